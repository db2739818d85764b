package notify

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/internal/metricstest"
	"github.com/cordon-mdm/cordon/server/store"
)

// TestOutboxMetrics: depth and oldest age per channel come from the
// store as it stands; an SMTP server that refuses counts a failure per
// attempt and leaves the mail waiting, a webhook's 2xx counts a delivery
// and empties its channel.
func TestOutboxMetrics(t *testing.T) {
	st, err := store.Open(t.Context(), t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	// An SMTP address nobody listens on: connection refused.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := l.Addr().String()
	l.Close()
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	t.Cleanup(hook.Close)
	smtpURL, _ := url.Parse("smtp://" + down)
	hookURL, _ := url.Parse(hook.URL)
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	svc := New(st, WithSMTP(smtpURL, "cordon@pd.example"), WithWebhook(hookURL, []byte("a webhook secret of 32 bytes...")), WithClock(func() time.Time { return at }))

	got := metricstest.Samples(t, svc.Collectors()...)
	for _, c := range Channels {
		for _, name := range []string{"cordon_notify_outbox_depth", "cordon_notify_outbox_oldest_age_seconds",
			"cordon_notify_deliveries_total", "cordon_notify_failures_total"} {
			if v, ok := got[name+"{"+c+"}"]; !ok || v != 0 {
				t.Errorf("empty outbox: %s{%s} = %v (present %v), want 0", name, c, v, ok)
			}
		}
	}

	if err := st.QueueNotifications(t.Context(), []store.Notification{
		{ID: "e1", Channel: "email", Recipient: "laso@pd.example", CreatedAt: at.Add(-10 * time.Minute), NextAttempt: at},
		{ID: "e2", Channel: "email", Recipient: "it@pd.example", CreatedAt: at.Add(-time.Minute), NextAttempt: at},
		{ID: "w1", Channel: "webhook", Body: "{}", CreatedAt: at.Add(-time.Minute), NextAttempt: at},
	}); err != nil {
		t.Fatal(err)
	}
	got = metricstest.Samples(t, svc.Collectors()...)
	for k, want := range map[string]float64{"cordon_notify_outbox_depth{email}": 2, "cordon_notify_outbox_depth{webhook}": 1,
		"cordon_notify_outbox_oldest_age_seconds{email}": 600, "cordon_notify_outbox_oldest_age_seconds{webhook}": 60} {
		if got[k] != want {
			t.Errorf("queued: %s = %v, want %v", k, got[k], want)
		}
	}

	svc.Deliver(t.Context())
	got = metricstest.Samples(t, svc.Collectors()...)
	for k, want := range map[string]float64{"cordon_notify_failures_total{email}": 2, "cordon_notify_deliveries_total{email}": 0,
		"cordon_notify_deliveries_total{webhook}": 1, "cordon_notify_failures_total{webhook}": 0,
		"cordon_notify_outbox_depth{email}": 2, "cordon_notify_outbox_oldest_age_seconds{email}": 600,
		"cordon_notify_outbox_depth{webhook}": 0, "cordon_notify_outbox_oldest_age_seconds{webhook}": 0} {
		if got[k] != want {
			t.Errorf("after one delivery round: %s = %v, want %v", k, got[k], want)
		}
	}
}
