package notify

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/store"
)

// downStore is a database that has stopped answering after the
// recipients were read once.
type downStore struct {
	mu   sync.Mutex
	down bool
}

var errDown = errors.New("database is down")

func (d *downStore) UsersWithRoles(context.Context, ...string) ([]store.User, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.down {
		return nil, errDown
	}
	return []store.User{{Email: "laso@pd.example", Role: "laso"}, {Email: "it@pd.example", Role: "it-admin"}}, nil
}
func (d *downStore) GetDevice(context.Context, string) (*store.Device, error) { return nil, errDown }
func (d *downStore) QueueNotifications(context.Context, []store.Notification) error {
	return errDown
}
func (d *downStore) DueNotifications(context.Context, time.Time, int) ([]store.Notification, error) {
	return nil, errDown
}
func (d *downStore) NotificationResult(context.Context, *store.Notification) error { return errDown }
func (d *downStore) Outbox(context.Context) ([]store.OutboxChannel, error)         { return nil, errDown }

// TestAuditAlarmWithoutTheDatabase: when the database that failed the
// audit write also refuses the outbox and the recipient list, the alarm
// goes to the signed webhook directly (and by SMTP to the recipients
// remembered from the last read, when SMTP is configured); with nothing
// reachable it reports an error so that
// the audit Log retries it.
func TestAuditAlarmWithoutTheDatabase(t *testing.T) {
	var (
		mu  sync.Mutex
		got []AuditPayload
	)
	secret := []byte("0123456789abcdef-secret")
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var p AuditPayload
		json.Unmarshal(b, &p)
		mu.Lock()
		got = append(got, p)
		mu.Unlock()
		if err := Verify(secret, b, r.Header.Get(SignatureHeader), time.Now(), time.Minute); err != nil {
			t.Errorf("webhook signature: %v", err)
		}
	}))
	defer hook.Close()
	u, _ := url.Parse(hook.URL)
	st := &downStore{}
	s := New(st, WithWebhook(u, secret))
	if err := s.RefreshAlarmRecipients(context.Background()); err != nil {
		t.Fatal(err)
	}
	st.down = true
	now := time.Date(2026, 12, 1, 12, 0, 0, 120000000, time.UTC)
	f := audit.Outage{Count: 2, First: now, Last: now.Add(time.Second), Actions: map[string]int{"command.requested": 2}, Err: "read-only"}
	if err := s.AuditFailing(context.Background(), f); err != nil {
		t.Fatalf("alarm with the webhook up: %v", err)
	}
	if len(got) != 1 || got[0].Event != "audit_failure" || got[0].Failures != 2 ||
		got[0].First != "2026-12-01T12:00:00.120000Z" || !strings.Contains(got[0].Actions, "command.requested") {
		t.Fatalf("webhook got %+v", got)
	}
	hook.Close()
	if err := s.AuditFailing(context.Background(), f); err == nil {
		t.Fatal("nobody reachable, and the alarm says it was raised")
	}
}
