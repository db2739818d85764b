package keystore

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"github.com/cordon-mdm/cordon/internal/swtpm/swtpmtest"
)

func newTPMStore(t *testing.T, sim *swtpmtest.TPM) TPM {
	return TPM{Dir: t.TempDir(), Open: sim.Open}
}

func signVerify(t *testing.T, s crypto.Signer) {
	t.Helper()
	d := sha256.Sum256([]byte("cordon"))
	sig, err := s.Sign(rand.Reader, d[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if !ecdsa.VerifyASN1(s.Public().(*ecdsa.PublicKey), d[:], sig) {
		t.Fatal("TPM signature does not verify with the key's public half")
	}
}

func TestTPMKeySignsAndReloads(t *testing.T) {
	sim := swtpmtest.Start(t)
	ks := newTPMStore(t, sim)
	if ks.Kind() != "tpm" {
		t.Fatalf("Kind %q", ks.Kind())
	}
	if ks.Present() {
		t.Fatal("key present before creation")
	}
	s1, err := ks.Signer()
	if err != nil {
		t.Fatal(err)
	}
	signVerify(t, s1)
	for _, f := range []string{tpmPublicFile, tpmPrivateFile} {
		st, err := os.Stat(filepath.Join(ks.Dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Fatalf("%s mode %v", f, st.Mode().Perm())
		}
	}
	// A new store on the same dir and TPM, as after a restart, loads the
	// same key rather than making another.
	s2, err := TPM{Dir: ks.Dir, Open: sim.Open}.Signer()
	if err != nil {
		t.Fatal(err)
	}
	if !s1.Public().(*ecdsa.PublicKey).Equal(s2.Public()) {
		t.Fatal("reload produced a different key")
	}
	signVerify(t, s2)

	d := sha512.Sum384([]byte("x"))
	if _, err := s2.Sign(rand.Reader, d[:], crypto.SHA384); err == nil {
		t.Fatal("TPM signer accepted a SHA-384 digest")
	}
}

// loadRaw loads blobs into tpm without the store's checks, as an
// attacker holding the blobs would; the key is flushed at cleanup.
func loadRaw(t *testing.T, tpm transport.TPM, pub tpm2.TPM2BPublic, priv tpm2.TPM2BPrivate) (tpm2.NamedHandle, error) {
	t.Helper()
	h, err := loadKey(tpm, pub, priv)
	if err == nil {
		t.Cleanup(func() { flush(tpm, h.Handle) })
	}
	return h, err
}

// duplicate asks the TPM to export key (TPM2_Duplicate to no new parent,
// no inner wrapper) through a policy session allowing Duplicate, the only
// way the TPM accepts the command at all. The session is salted with the
// SRK: an unsalted, unbound session's HMAC key is empty, which Go's FIPS
// 140-only mode refuses.
func duplicate(t *testing.T, tpm transport.TPM, key tpm2.NamedHandle) error {
	t.Helper()
	srk, err := createSRK(tpm)
	if err != nil {
		t.Fatal(err)
	}
	defer flush(tpm, srk.Handle)
	srkPub, err := tpm2.ReadPublic{ObjectHandle: srk.Handle}.Execute(tpm)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := srkPub.OutPublic.Contents()
	if err != nil {
		t.Fatal(err)
	}
	sess := tpm2.Policy(tpm2.TPMAlgSHA256, 16, func(tpm transport.TPM, h tpm2.TPMISHPolicy, _ tpm2.TPM2BNonce) error {
		_, err := tpm2.PolicyCommandCode{PolicySession: h, Code: tpm2.TPMCCDuplicate}.Execute(tpm)
		return err
	}, tpm2.Salted(srk.Handle, *pub))
	_, err = tpm2.Duplicate{ObjectHandle: tpm2.AuthHandle{Handle: key.Handle, Name: key.Name, Auth: sess},
		NewParentHandle: tpm2.TPMRHNull, Symmetric: tpm2.TPMTSymDef{Algorithm: tpm2.TPMAlgNull}}.Execute(tpm)
	return err
}

// createWith makes a key from tmpl under the SRK and loads it.
func createWith(t *testing.T, tpm transport.TPM, tmpl tpm2.TPMTPublic) tpm2.NamedHandle {
	t.Helper()
	srk, err := createSRK(tpm)
	if err != nil {
		t.Fatal(err)
	}
	rsp, err := tpm2.Create{ParentHandle: srk, InPublic: tpm2.New2B(tmpl)}.Execute(tpm)
	if err != nil {
		flush(tpm, srk.Handle)
		t.Fatal(err)
	}
	flush(tpm, srk.Handle)
	h, err := loadRaw(t, tpm, rsp.OutPublic, rsp.OutPrivate)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestTPMRefusesDuplication(t *testing.T) {
	sim := swtpmtest.Start(t)
	ks := newTPMStore(t, sim)
	if _, err := ks.Signer(); err != nil {
		t.Fatal(err)
	}
	pub, priv, err := ks.readBlobs()
	if err != nil {
		t.Fatal(err)
	}
	s, err := newSigner(sim.Open, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	tpm, err := sim.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer tpm.Close()

	// The identity key itself: no authorization can ever admit
	// Duplicate (its policy is empty), and the TPM says so.
	key, err := loadRaw(t, tpm, s.pub, s.priv)
	if err != nil {
		t.Fatal(err)
	}
	if err := duplicate(t, tpm, key); !errors.Is(err, tpm2.TPMRCPolicyFail) {
		t.Fatalf("duplicating the identity key: got %v, want TPM_RC_POLICY_FAIL", err)
	}
	// swtpm holds three objects at once and has no resource manager.
	flush(tpm, key.Handle)

	// Even with a policy that authorizes duplication, the template's
	// FixedTPM/FixedParent make the TPM refuse: TPM_RC_ATTRIBUTES on the
	// object handle.
	calc, err := tpm2.NewPolicyCalculator(tpm2.TPMAlgSHA256)
	if err != nil {
		t.Fatal(err)
	}
	if err := (tpm2.PolicyCommandCode{Code: tpm2.TPMCCDuplicate}).Update(calc); err != nil {
		t.Fatal(err)
	}
	tmpl := KeyTemplate()
	tmpl.AuthPolicy = tpm2.TPM2BDigest{Buffer: calc.Hash().Digest}
	fixed := createWith(t, tpm, tmpl)
	err = duplicate(t, tpm, fixed)
	flush(tpm, fixed.Handle)
	var fmt1 tpm2.TPMFmt1Error
	if !errors.Is(err, tpm2.TPMRCAttributes) {
		t.Fatalf("duplicating a FixedTPM/FixedParent key with a duplication policy: got %v, want TPM_RC_ATTRIBUTES", err)
	}
	if errors.As(err, &fmt1) {
		if isHandle, _ := fmt1.Handle(); !isHandle {
			t.Fatalf("TPM_RC_ATTRIBUTES not about the object handle: %v", err)
		}
	}

	// Control: the same key without FixedTPM/FixedParent duplicates, so
	// the refusals above are the attributes' doing, not the test's.
	tmpl.ObjectAttributes.FixedTPM, tmpl.ObjectAttributes.FixedParent = false, false
	if err := duplicate(t, tpm, createWith(t, tpm, tmpl)); err != nil {
		t.Fatalf("control key (exportable) did not duplicate: %v", err)
	}
}

// copyBlobs copies a store's blobs into a fresh dir, as someone copying
// the state dir to another machine would.
func copyBlobs(t *testing.T, from string) string {
	t.Helper()
	to := t.TempDir()
	for _, f := range []string{tpmPublicFile, tpmPrivateFile} {
		b, err := os.ReadFile(filepath.Join(from, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return to
}

func TestTPMKeyCopiedToAnotherTPMDoesNotLoad(t *testing.T) {
	simA, simB := swtpmtest.Start(t), swtpmtest.Start(t)
	ks := newTPMStore(t, simA)
	if _, err := ks.Signer(); err != nil {
		t.Fatal(err)
	}
	copied := TPM{Dir: copyBlobs(t, ks.Dir), Open: simB.Open}
	_, err := copied.Signer()
	if err == nil {
		t.Fatal("blobs copied to another TPM produced a signer")
	}
	// The other TPM's SRK cannot unwrap the private area: its integrity
	// check fails.
	if !errors.Is(err, tpm2.TPMRCIntegrity) {
		t.Fatalf("loading on another TPM: got %v, want TPM_RC_INTEGRITY", err)
	}
	// The copy still loads on the original TPM: it is the TPM, not the
	// files, that makes the key.
	if _, err := (TPM{Dir: copied.Dir, Open: simA.Open}).Signer(); err != nil {
		t.Fatalf("copy on the original TPM: %v", err)
	}
}

func TestTPMDestroy(t *testing.T) {
	sim := swtpmtest.Start(t)
	ks := newTPMStore(t, sim)
	s, err := ks.Signer()
	if err != nil {
		t.Fatal(err)
	}
	if err := ks.Destroy(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ks.readBlobs(); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("blobs still load after Destroy: %v", err)
	}
	for _, f := range []string{tpmPublicFile, tpmPrivateFile} {
		if _, err := os.Stat(filepath.Join(ks.Dir, f)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s still present after Destroy: %v", f, err)
		}
	}
	if ks.Present() {
		t.Fatal("Present after Destroy")
	}
	if _, err := (TPM{Dir: ks.Dir, Open: sim.Open, Existing: true}).Signer(); !errors.Is(err, ErrKeyGone) {
		t.Fatalf("loading the destroyed key: got %v, want ErrKeyGone", err)
	}
	// Nothing of the key is left to load: a new Signer is a new key.
	s2, err := ks.Signer()
	if err != nil {
		t.Fatal(err)
	}
	if s2.Public().(*ecdsa.PublicKey).Equal(s.Public()) {
		t.Fatal("the destroyed key came back")
	}
	// Destroy twice is fine (a wipe retried after a crash).
	if err := ks.Destroy(); err != nil {
		t.Fatal(err)
	}
	if err := ks.Destroy(); err != nil {
		t.Fatal(err)
	}
}

func TestTPMWithoutTransport(t *testing.T) {
	if _, err := (TPM{Dir: t.TempDir()}).Signer(); !errors.Is(err, ErrNoTPM) {
		t.Fatalf("got %v, want ErrNoTPM", err)
	}
}
