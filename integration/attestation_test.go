package integration

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/agent/keystore"
	"github.com/cordon-mdm/cordon/internal/swtpm/swtpmtest"
	"github.com/cordon-mdm/cordon/internal/testenv"
	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/server"
)

// ekRootsFile writes ca's root as the PEM bundle --tpm-ek-roots reads.
func ekRootsFile(t *testing.T, ca *swtpmtest.EKCA) string {
	p := filepath.Join(t.TempDir(), "ek-roots.pem")
	if err := os.WriteFile(p, ca.PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

type protectionJSON struct {
	KeyProtection string `json:"key_protection"`
	EKSHA256      string `json:"ek_sha256"`
}

func keyProtection(t *testing.T, e *testenv.Env, key, id string) protectionJSON {
	t.Helper()
	var d protectionJSON
	if st := e.Do("GET", "/api/v1/devices/"+id, key, nil, &d); st != 200 {
		t.Fatalf("device %s: %d", id, st)
	}
	return d
}

type attestAccessJSON struct {
	Decision      string   `json:"decision"`
	Reasons       []string `json:"reasons"`
	KeyProtection string   `json:"key_protection"`
}

func attestAccess(t *testing.T, e *testenv.Env, key, id string) attestAccessJSON {
	t.Helper()
	var a attestAccessJSON
	if st := e.Do("GET", "/api/v1/devices/"+id+"/access", key, nil, &a); st != 200 {
		t.Fatalf("access %s: %d", id, st)
	}
	return a
}

// TestTPMAttestationLevels (acceptance 1): an agent whose TPM has an EK
// certificate from the test's EK root enrolls tpm-attested when the
// server has that root (--tpm-ek-roots), and tpm-unverified when it has
// none, with the EK's hash and "trusted on first use" in the trail; a
// file-key agent is software. A profile requiring tpm-attested allows the
// first and denies the file-key device, saying why.
func TestTPMAttestationLevels(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn func(testing.TB) string) {
		sim := swtpmtest.Start(t)
		ca := swtpmtest.NewEKCA(t)
		ca.Provision(t, sim)

		e := testenv.New(t, dsn(t), server.WithTPMEKRoots(ekRootsFile(t, ca)))
		admin, laso := e.APIKey("it-admin"), e.APIKey("laso")
		tpmDir := enrollTPM(t, e, sim)
		tpmCfg, _ := tpmDir.LoadConfig()
		if got := keyProtection(t, e, laso, tpmCfg.DeviceID); got.KeyProtection != protocol.KeyTPMAttested || got.EKSHA256 == "" {
			t.Fatalf("TPM agent with a certified EK and the root configured: %+v, want tpm-attested", got)
		}
		fileDir := e.MustEnroll()
		fileCfg, _ := fileDir.LoadConfig()
		if got := keyProtection(t, e, laso, fileCfg.DeviceID); got.KeyProtection != protocol.KeySoftware {
			t.Fatalf("file-key agent: %+v, want software", got)
		}

		// The console's device view says it.
		b := newBrowserless(t, e)
		b.signIn("it@agency.example", addConsoleUser(t, e, "it@agency.example", "it-admin"), time.Now)
		if st, page, _ := b.get("/console/devices/" + tpmCfg.DeviceID); st != 200 ||
			!strings.Contains(page, `id="key-protection" class="key-tpm-attested">tpm-attested:`) {
			t.Fatalf("console device page of the attested device: %d\n%s", st, page)
		}

		prof := "name: tpm-only\ncontrols:\n  key_protection: {require_tpm: false, require_level: tpm-attested}\n"
		if st := putRaw(t, e, admin, "/api/v1/profiles/tpm-only", prof); st != 200 {
			t.Fatalf("profile: %d", st)
		}
		if st := e.Do("PUT", "/api/v1/groups/default", admin, map[string]string{"profile": "tpm-only"}, nil); st != 200 {
			t.Fatalf("group: %d", st)
		}
		e.StartAgent(tpmDir)
		e.StartAgent(fileDir)
		testenv.Eventually(t, 20*time.Second, "the attested device allowed", func() bool {
			a := attestAccess(t, e, laso, tpmCfg.DeviceID)
			return a.Decision == "allow" && a.KeyProtection == protocol.KeyTPMAttested
		})
		testenv.Eventually(t, 20*time.Second, "the file-key device denied for its key protection", func() bool {
			a := attestAccess(t, e, laso, fileCfg.DeviceID)
			return a.Decision == "deny" && a.KeyProtection == protocol.KeySoftware &&
				strings.Contains(strings.Join(a.Reasons, "; "), "requires tpm-attested")
		})

		// The same TPM, on a server without EK roots: tpm-unverified, and
		// the trail says the EK was trusted on first use.
		e2 := testenv.New(t, dsn(t))
		dir2 := enrollTPM(t, e2, sim)
		cfg2, _ := dir2.LoadConfig()
		got := keyProtection(t, e2, e2.APIKey("laso"), cfg2.DeviceID)
		if got.KeyProtection != protocol.KeyTPMUnverified || got.EKSHA256 == "" {
			t.Fatalf("no EK roots: %+v, want tpm-unverified with the EK hash", got)
		}
		var found bool
		for _, en := range e2.Audit("enrollment.succeeded") {
			if en.Target == "device:"+cfg2.DeviceID {
				found = en.Details["key_protection"] == protocol.KeyTPMUnverified && en.Details["ek_sha256"] == got.EKSHA256 &&
					strings.Contains(en.Details["ek_trust"], "trusted on first use")
			}
		}
		if !found {
			t.Fatalf("enrollment.succeeded of the unverified device does not say the EK was trusted on first use: %+v", e2.Audit("enrollment.succeeded"))
		}
	})
}

// attestClient drives the two steps by hand, as a hostile or broken
// agent might, with real TPM output from swtpm.
type attestClient struct {
	t     *testing.T
	e     *testenv.Env
	token string
}

func (c attestClient) challenge(ev *keystore.Evidence) protocol.ChallengeResponse {
	c.t.Helper()
	var ch protocol.ChallengeResponse
	if st := c.e.Do("POST", protocol.EnrollChallengePath, "", protocol.ChallengeRequest{Token: c.token,
		EKCert: ev.EKCert, EKPublic: ev.EKPublic, AKPublic: ev.AKPublic}, &ch); st != 201 {
		c.t.Fatalf("challenge: %d", st)
	}
	return ch
}

func (c attestClient) enroll(signer crypto.Signer, a *protocol.Attestation) (int, string) {
	c.t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "cruiser-7"}}, signer)
	if err != nil {
		c.t.Fatal(err)
	}
	var out struct {
		Error    string `json:"error"`
		DeviceID string `json:"device_id"`
	}
	st := c.e.Do("POST", protocol.EnrollPath, "", protocol.EnrollRequest{Token: c.token,
		CSR:   string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})),
		Facts: protocol.DeviceFacts{Hostname: "cruiser-7", Platform: "linux/amd64"}, Attestation: a}, &out)
	if out.Error != "" {
		return st, out.Error
	}
	return st, out.DeviceID
}

func tpmKey(t *testing.T, sim *swtpmtest.TPM) (keystore.TPM, crypto.Signer) {
	ks := keystore.TPM{Dir: t.TempDir(), Open: sim.Open}
	s, err := ks.Signer()
	if err != nil {
		t.Fatal(err)
	}
	return ks, s
}

func evidence(t *testing.T, ks keystore.TPM) *keystore.Evidence {
	ev, err := ks.Evidence()
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func attestAnswer(t *testing.T, ev *keystore.Evidence, ch protocol.ChallengeResponse, nonce []byte) *protocol.Attestation {
	t.Helper()
	secret, c, err := ev.Answer(ch.Credential, ch.Secret, nonce)
	if err != nil {
		t.Fatal(err)
	}
	return &protocol.Attestation{ChallengeID: ch.ChallengeID, Secret: secret, CertifyInfo: c.CertifyInfo,
		Signature: c.Signature, KeyPublic: c.KeyPublic}
}

// TestAttestationRefusals (acceptance 3): a wrong nonce, a certification
// of another key than the CSR's, an AK not bound to the EK (the secret
// of another TPM's activation; an AK from another TPM under this one's
// EK) and a replay of an enrollment's attestation are each refused with
// a clear 403 and an enrollment.refused entry naming the reason; none
// creates a device or spends the token.
func TestAttestationRefusals(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn func(testing.TB) string) {
		simA, simB := swtpmtest.Start(t), swtpmtest.Start(t)
		e := testenv.New(t, dsn(t))
		c := attestClient{t: t, e: e, token: e.Token(time.Hour, 2)}
		ksA, keyA := tpmKey(t, simA)
		ksB, _ := tpmKey(t, simB)
		ksA2, _ := tpmKey(t, simA) // a second key in the same TPM

		refused := func(what, want string, st int, msg string) {
			t.Helper()
			if st != 403 || !strings.Contains(msg, want) {
				t.Errorf("%s: %d %q, want 403 with %q", what, st, msg, want)
				return
			}
			for _, en := range e.Audit("enrollment.refused") {
				if strings.Contains(en.Details["reason"], want) {
					return
				}
			}
			t.Errorf("%s: no enrollment.refused entry with %q", what, want)
		}

		// A wrong nonce: the TPM certifies over something else.
		evA := evidence(t, ksA)
		ch := c.challenge(evA)
		st, msg := c.enroll(keyA, attestAnswer(t, evA, ch, []byte("not the server's nonce")))
		refused("wrong nonce", "wrong nonce", st, msg)

		// A certification of a different key: the TPM certifies its other
		// key, the CSR is for this one.
		ev2 := evidence(t, ksA2)
		ch = c.challenge(ev2)
		st, msg = c.enroll(keyA, attestAnswer(t, ev2, ch, ch.Nonce))
		refused("another key certified", "certification of a different key", st, msg)

		// An AK not bound to the EK: the secret from another TPM's
		// activation of its own challenge, with this TPM's certification.
		evA = evidence(t, ksA)
		chA := c.challenge(evA)
		evB := evidence(t, ksB)
		chB := c.challenge(evB)
		attA, attB := attestAnswer(t, evA, chA, chA.Nonce), attestAnswer(t, evB, chB, chB.Nonce)
		attA.Secret = attB.Secret
		st, msg = c.enroll(keyA, attA)
		refused("another TPM's secret", "AK not bound to the EK", st, msg)
		// And an AK from another TPM under this TPM's EK: neither TPM can
		// activate that credential (checked in agent/keystore), so the
		// answer's secret is a guess.
		mixed := &keystore.Evidence{EKPublic: evA.EKPublic, AKPublic: evB.AKPublic}
		chM := c.challenge(mixed)
		if _, _, err := evB.Answer(chM.Credential, chM.Secret, chM.Nonce); err == nil {
			t.Fatal("TPM B activated a credential made for TPM A's EK")
		}
		attM := attestAnswer(t, evB, chB, chM.Nonce) // B's certification, over the mixed challenge's nonce
		attM.ChallengeID = chM.ChallengeID
		st, msg = c.enroll(keyA, attM)
		refused("another TPM's AK", "AK not bound to the EK", st, msg)

		// A replay: a good attestation enrolls once; sent again (the token
		// has a use left) it is refused.
		evA = evidence(t, ksA)
		ch = c.challenge(evA)
		good := attestAnswer(t, evA, ch, ch.Nonce)
		if st, id := c.enroll(keyA, good); st != 201 {
			t.Fatalf("a correct attestation: %d %s", st, id)
		} else if got := keyProtection(t, e, e.APIKey("laso"), id); got.KeyProtection != protocol.KeyTPMUnverified {
			t.Fatalf("a correct attestation without EK roots: %+v", got)
		}
		st, msg = c.enroll(keyA, good)
		refused("replay", "replay", st, msg)
		// The token's other use was not spent by any refusal.
		if st, id := c.enroll(keyA, nil); st != 201 {
			t.Fatalf("the token's last use after the refusals: %d %s", st, id)
		}
		if n := len(listDevices(e, e.APIKey("laso"))); n != 2 {
			t.Fatalf("%d devices, want 2 (the good attestation and the plain enrollment)", n)
		}
	})
}
