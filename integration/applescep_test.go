package integration

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/smallstep/scep"

	"github.com/cordon-mdm/cordon/enroll"
	"github.com/cordon-mdm/cordon/internal/secret"
	"github.com/cordon-mdm/cordon/internal/testenv"
	"github.com/cordon-mdm/cordon/server/store"
)

// TestSCEPIsServedOnTheConsoleListener: the server mounts SCEP at /scep
// without an API key (the one-time challenge authenticates a request),
// advertises only AES and SHA-256, publishes its RA before Cordon's
// chain, and mints challenges for a live enrollment token only. The
// PKCSReq exchange itself is server/applescep's test.
func TestSCEPIsServedOnTheConsoleListener(t *testing.T) {
	e := testenv.New(t, "")
	get := func(op string) []byte {
		t.Helper()
		resp, err := e.Client().Get(e.Server.ConsoleURL() + "/scep?operation=" + op)
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
	if caps := string(get("GetCACaps")); !strings.Contains(caps, "AES\n") || strings.Contains(caps, "DES3") {
		t.Fatalf("GetCACaps %q", caps)
	}
	certs, err := scep.CACerts(get("GetCACert"))
	if err != nil || len(certs) != 3 || !certs[1].Equal(e.Server.CA.Intermediate()) || !certs[2].Equal(e.Server.CA.Root()) {
		t.Fatalf("GetCACert: %d certificates, %v", len(certs), err)
	}
	id, _, err := secret.Parse(enroll.TokenPrefix, e.Token(time.Hour, 1))
	if err != nil {
		t.Fatal(err)
	}
	if ch, err := e.Server.SCEP.MintChallenge(t.Context(), id, "local:it"); err != nil || len(ch) < 20 {
		t.Fatalf("challenge %q: %v", ch, err)
	}
	if _, err := e.Server.SCEP.MintChallenge(t.Context(), "nope", "local:it"); !errors.Is(err, store.ErrTokenBad) {
		t.Fatalf("a challenge for no token: %v", err)
	}
}
