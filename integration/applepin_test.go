package integration

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// The console's device page shows a locked Mac's PIN to the LASO, and to
// no one else: it is what unlocks the Mac again.
func TestMacPINOnTheConsoleIsTheLASOs(t *testing.T) {
	e, _ := appleEnv(t, "")
	_, macID := appleDevice(t, e, "00008110-PINMAC00000001", "Mac14,2")
	st, c := issue(t, e, e.APIKey("it-admin"), macID, map[string]string{"kind": "lock"})
	if st != http.StatusAccepted {
		t.Fatalf("lock: HTTP %d", st)
	}
	pin := getAppleCommand(t, e, e.APIKey("laso"), c.ID).PIN
	if len(pin) != 6 {
		t.Fatalf("PIN %q", pin)
	}
	for role, shown := range map[string]bool{"laso": true, "it-admin": false, "auditor": false} {
		b := newBrowserless(t, e)
		b.signIn("pin-"+role+"@agency.gov", addConsoleUser(t, e, "pin-"+role+"@agency.gov", role), time.Now)
		st, page, _ := b.get("/console/devices/" + macID)
		if st != http.StatusOK {
			t.Fatalf("%s: device page HTTP %d", role, st)
		}
		if got := strings.Contains(page, "PIN <code>"+pin+"</code>"); got != shown {
			t.Errorf("%s sees the Mac's PIN: %v, want %v", role, got, shown)
		}
	}
}
