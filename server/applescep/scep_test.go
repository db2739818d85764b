package applescep_test

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smallstep/scep"

	"github.com/cordon-mdm/cordon/internal/testbed"
	"github.com/cordon-mdm/cordon/pki"
	"github.com/cordon-mdm/cordon/pki/identity"
	"github.com/cordon-mdm/cordon/server/applemdm/appletest"
	"github.com/cordon-mdm/cordon/server/applescep"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/store"
)

type env struct {
	svc *applescep.Service
	st  *store.Store
	ca  *pki.CA
	srv *httptest.Server
	ra  *x509.Certificate
	now time.Time
}

func setup(t *testing.T) *env {
	t.Helper()
	dir, st, ca := testbed.StoreAndCA(t)
	ra, err := applescep.LoadRA(dir)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{st: st, ca: ca, ra: ra.Cert, now: time.Now()}
	e.svc = applescep.New(ca, st, audit.New(st, slog.New(slog.DiscardHandler)), applescep.RAInDir(dir),
		applescep.WithClock(func() time.Time { return e.now }))
	e.srv = httptest.NewServer(http.StripPrefix("/scep", e.svc))
	t.Cleanup(e.srv.Close)
	at := time.Now().UTC()
	for id, exp := range map[string]time.Time{"tok": at.Add(time.Hour), "soon": at.Add(time.Minute)} {
		if err := st.CreateToken(t.Context(), &store.EnrollmentToken{ID: id, Hash: []byte(id), ExpiresAt: exp,
			Uses: 1, UsesLeft: 1, Owner: "ofc.jones", CreatedAt: at}); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

func (e *env) get(t *testing.T, op string) []byte {
	t.Helper()
	resp, err := http.Get(e.srv.URL + "/scep?operation=" + op)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %s %s", op, resp.Status, b)
	}
	return b
}

// enroll is appletest's SCEP client (Apple's payload, but SHA-256 and
// AES, so that it runs under fips140=only too): the CertRep's status
// and certificate.
func (e *env) enroll(t *testing.T, challenge string) (scep.PKIStatus, *x509.Certificate) {
	t.Helper()
	res, err := appletest.SCEP(t.Context(), nil, e.srv.URL+"/scep", challenge)
	if err != nil {
		t.Fatal(err)
	}
	if !res.CACerts[0].Equal(e.ra) {
		t.Fatal("GetCACert does not list the RA first")
	}
	return res.Status, res.Cert
}

func (e *env) audited(t *testing.T, action, outcome string) int {
	t.Helper()
	es, err := e.st.ListAudit(context.Background(), store.AuditQuery{Action: action, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, x := range es {
		if x.Outcome == outcome {
			n++
		}
	}
	return n
}

func TestCapabilitiesAreApprovedOnly(t *testing.T) {
	caps := string(setup(t).get(t, "GetCACaps"))
	for _, want := range []string{"AES", "SHA-256", "POSTPKIOperation"} {
		if !strings.Contains(caps, want+"\n") {
			t.Errorf("GetCACaps %q lacks %s", caps, want)
		}
	}
	for _, bad := range []string{"DES3", "SHA-1\n"} {
		if strings.Contains(caps, bad) {
			t.Errorf("GetCACaps %q offers %s", caps, bad)
		}
	}
}

func TestChallengeEnrollsOnce(t *testing.T) {
	e := setup(t)
	ch, err := e.svc.MintChallenge(t.Context(), "tok", "apikey:it")
	if err != nil {
		t.Fatal(err)
	}
	status, cert := e.enroll(t, ch)
	if status != scep.SUCCESS || cert == nil {
		t.Fatalf("first use: %s", status)
	}
	roots, inters := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(e.ca.Root())
	inters.AddCert(e.ca.Intermediate())
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("issued certificate does not chain to Cordon's root: %v", err)
	}
	id, err := identity.DeviceID(cert)
	if err != nil || cert.Subject.CommonName != id {
		t.Fatalf("device id %q %v, subject %v: the name must be the server's", id, err, cert.Subject)
	}
	if _, ok := cert.PublicKey.(*rsa.PublicKey); !ok {
		t.Fatalf("issued for a %T key", cert.PublicKey)
	}
	if n := e.audited(t, applescep.ActionIssued, "success"); n != 1 {
		t.Fatalf("%d issuances audited", n)
	}

	if status, _ := e.enroll(t, ch); status != scep.FAILURE {
		t.Fatalf("a challenge used twice: %s", status)
	}
	if status, _ := e.enroll(t, "not-a-challenge"); status != scep.FAILURE {
		t.Fatalf("an unknown challenge: %s", status)
	}
	if n := e.audited(t, applescep.ActionRefused, "denied"); n != 2 {
		t.Fatalf("%d refusals audited, want the reuse and the unknown one", n)
	}
}

func TestExpiredChallengeIsRefused(t *testing.T) {
	e := setup(t)
	ch, err := e.svc.MintChallenge(t.Context(), "soon", "apikey:it")
	if err != nil {
		t.Fatal(err)
	}
	e.now = e.now.Add(2 * time.Minute) // past the token's expiry
	if status, _ := e.enroll(t, ch); status != scep.FAILURE {
		t.Fatalf("an expired challenge: %s", status)
	}
	if _, err := e.svc.MintChallenge(t.Context(), "soon", "apikey:it"); !errors.Is(err, store.ErrTokenExp) {
		t.Fatalf("a challenge minted for an expired token: %v", err)
	}
	if _, err := e.svc.MintChallenge(t.Context(), "nope", "apikey:it"); !errors.Is(err, store.ErrTokenBad) {
		t.Fatalf("a challenge minted for an unknown token: %v", err)
	}
}

func TestRAIsKeptPrivateAndReloaded(t *testing.T) {
	dir := t.TempDir()
	a, err := applescep.LoadRA(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, "scep-ra.key"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("RA key mode %v %v", st.Mode().Perm(), err)
	}
	if a.Key.N.BitLen() < 2048 {
		t.Fatalf("RA key of %d bits", a.Key.N.BitLen())
	}
	b, err := applescep.LoadRA(dir)
	if err != nil || !b.Cert.Equal(a.Cert) || !b.Key.Equal(a.Key) {
		t.Fatalf("second start made another RA: %v", err)
	}
}

// Servers sharing a data dir make the RA at once on their first Apple
// enrollments: all must end with the one pair on disk.
func TestRAMadeAtOnceIsOnePair(t *testing.T) {
	dir := t.TempDir()
	ras := make([]*applescep.RA, 3)
	var wg sync.WaitGroup
	for i := range ras {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ra, err := applescep.LoadRA(dir)
			if err != nil {
				t.Error(err)
			}
			ras[i] = ra
		}()
	}
	wg.Wait()
	onDisk, err := applescep.LoadRA(dir)
	if err != nil {
		t.Fatalf("the RA on disk: %v", err)
	}
	for i, ra := range ras {
		if ra == nil || !ra.Cert.Equal(onDisk.Cert) || !ra.Key.Equal(onDisk.Key) {
			t.Fatalf("caller %d holds an RA other than the one on disk", i)
		}
	}
}
