package integration

import (
	"crypto"
	"crypto/ecdsa"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"

	"github.com/cordon-mdm/cordon/agent"
	"github.com/cordon-mdm/cordon/agent/enrollment"
	"github.com/cordon-mdm/cordon/agent/keystore"
	"github.com/cordon-mdm/cordon/agent/posture"
	"github.com/cordon-mdm/cordon/agent/state"
	"github.com/cordon-mdm/cordon/internal/fips"
	"github.com/cordon-mdm/cordon/internal/swtpm/swtpmtest"
	"github.com/cordon-mdm/cordon/internal/testenv"
)

// TestTPMAgentEnrollsConnectsAndIsWiped: an agent whose key lives in a
// real TPM 2.0 (swtpm) enrolls, connects over mTLS signing in the TPM, and
// reports its key storage as "tpm"; its state dir copied to a machine with
// another TPM cannot connect; a wipe leaves nothing that can load the key.
func TestTPMAgentEnrollsConnectsAndIsWiped(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn func(testing.TB) string) {
		simA, simB := swtpmtest.Start(t), swtpmtest.Start(t)
		e := testenv.New(t, dsn(t))
		laso := e.APIKey("laso")
		dir := enrollTPM(t, e, simA)

		// A copy of the whole state dir, taken before the wipe, on a
		// machine with another TPM.
		stolen := state.Dir{Path: filepath.Join(t.TempDir(), "agent"), TPM: simB.Open}
		copyDir(t, dir.Path, stolen.Path)

		exec := &fakeExecutor{}
		dir.Keys = keystore.Auto // as `cordon-agent run`, which keeps what enrollment chose
		a := e.StartAgent(dir, agent.WithExecutor(exec))
		waitOnline(t, e, laso, a.DeviceID())
		testenv.Eventually(t, 15*time.Second, "posture reporting key storage tpm", func() bool {
			st := a.Status()
			return st.LastPosture != nil && st.LastPosture.Identity != nil && st.LastPosture.Identity.KeyStorage == "tpm"
		})

		thief, err := agent.New(stolen, agent.WithLogger(e.Log), agent.WithCollector(testenv.OSOnly{}),
			agent.WithBackoff(50*time.Millisecond, time.Second))
		if err != nil {
			t.Fatal(err)
		}
		testenv.RunAgent(t, thief, stolen)
		testenv.Eventually(t, 15*time.Second, "the copied agent failing to load its key", func() bool {
			st := thief.Status()
			return st.Connection != "connected" && strings.Contains(st.LastError, "does not load into this TPM")
		})
		if _, err := stolen.Certificate(); !errors.Is(err, tpm2.TPMRCIntegrity) {
			t.Fatalf("copied state dir on another TPM: got %v, want TPM_RC_INTEGRITY", err)
		}

		if st, c := issue(t, e, laso, a.DeviceID(), map[string]string{"kind": "wipe", "confirm": a.DeviceID()}); st != 202 {
			t.Fatalf("wipe: %d %+v", st, c)
		}
		testenv.Eventually(t, 90*time.Second, "identity destroyed", func() bool {
			_, err := os.Stat(filepath.Join(dir.Path, "agent.json"))
			return errors.Is(err, os.ErrNotExist)
		})
		for _, f := range []string{"tpm-key.pub", "tpm-key.priv", "cert.pem"} {
			if _, err := os.Stat(filepath.Join(dir.Path, f)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s survived the wipe", f)
			}
		}
		if _, err := dir.Certificate(); err == nil {
			t.Fatal("the wiped state dir still makes a client certificate")
		}
	})
}

// enrollTPM enrolls a fresh state dir with its key in sim, as
// `cordon-agent enroll --keystore tpm` does, and checks what it recorded.
func enrollTPM(t *testing.T, e *testenv.Env, sim *swtpmtest.TPM) state.Dir {
	t.Helper()
	dir := state.Dir{Path: filepath.Join(t.TempDir(), "agent"), Keys: keystore.TPMKind, TPM: sim.Open}
	if _, err := enrollment.Enroll(t.Context(), enrollment.Request{Server: e.Server.ConsoleURL(), Token: e.Token(time.Hour, 1),
		Fingerprint: e.Server.CA.RootFingerprint(), State: dir, Facts: posture.Facts(t.Context(), "test"), FIPS: fips.Default()}); err != nil {
		t.Fatal(err)
	}
	cfg, err := dir.LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.KeyStore != "tpm" {
		t.Fatalf("enrollment recorded key store %q", cfg.KeyStore)
	}
	if _, err := os.Stat(filepath.Join(dir.Path, "key.pem")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a TPM enrollment wrote a file key")
	}
	return dir
}

// TestTPMCertificateRenewalKeepsTheKey: renewal over the channel sends a
// CSR signed by the same TPM key; the key (its blobs) does not change and
// the renewed certificate authenticates, signing in the TPM.
func TestTPMCertificateRenewalKeepsTheKey(t *testing.T) {
	sim := swtpmtest.Start(t)
	e := testenv.New(t, "", serverOpt(3*time.Second))
	dir := enrollTPM(t, e, sim)
	blobs := func() string {
		pub, err1 := os.ReadFile(filepath.Join(dir.Path, "tpm-key.pub"))
		priv, err2 := os.ReadFile(filepath.Join(dir.Path, "tpm-key.priv"))
		if err := errors.Join(err1, err2); err != nil {
			t.Fatal(err)
		}
		return string(pub) + string(priv)
	}
	before, blobsBefore := agentCert(t, dir).Leaf, blobs()
	a := e.StartAgent(dir, agentRenewCheck(100*time.Millisecond))
	testenv.Eventually(t, 10*time.Second, "a renewed certificate on disk", func() bool {
		c, err := dir.Certificate()
		return err == nil && c.Leaf.SerialNumber.Cmp(before.SerialNumber) != 0
	})
	after := agentCert(t, dir)
	if !after.Leaf.PublicKey.(*ecdsa.PublicKey).Equal(before.PublicKey) {
		t.Fatal("renewal changed the key")
	}
	if blobs() != blobsBefore {
		t.Fatal("renewal rewrote the TPM key's blobs")
	}
	a.Stop()
	ws, err := dial(e, after)
	if err != nil {
		t.Fatalf("renewed certificate with the TPM key refused: %v", err)
	}
	ws.Close()
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.CopyFS(to, os.DirFS(from)); err != nil {
		t.Fatal(err)
	}
}

// checkTPMHoldsNoKey fails t if sim holds, loaded or persistent, an
// object whose public key is pub: after a wipe the key must exist
// nowhere, not only no longer in the state dir.
func checkTPMHoldsNoKey(t *testing.T, sim *swtpmtest.TPM, pub crypto.PublicKey) {
	t.Helper()
	tpm, err := sim.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer tpm.Close()
	for _, first := range []tpm2.TPMHandle{tpm2.TPMHandle(tpm2.TPMHTTransient) << 24, tpm2.TPMHandle(tpm2.TPMHTPersistent) << 24} {
		rsp, err := tpm2.GetCapability{Capability: tpm2.TPMCapHandles, Property: uint32(first), PropertyCount: 64}.Execute(tpm)
		if err != nil {
			t.Fatal(err)
		}
		hs, err := rsp.CapabilityData.Data.Handles()
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range hs.Handle {
			if h>>24 != first>>24 {
				continue
			}
			rp, err := tpm2.ReadPublic{ObjectHandle: h}.Execute(tpm)
			if err != nil {
				continue
			}
			p, err := rp.OutPublic.Contents()
			if err != nil {
				continue
			}
			if got, err := tpm2.Pub(*p); err == nil && pub.(interface{ Equal(crypto.PublicKey) bool }).Equal(got) {
				t.Fatalf("the TPM still holds the wiped identity key at handle %#x", h)
			}
		}
	}
}
