package integration

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/internal/testenv"
	"github.com/cordon-mdm/cordon/server"
	"github.com/cordon-mdm/cordon/server/notify"
)

// TestWebhookAndCSAISO: every incident is posted as signed JSON, retried
// from the outbox while the receiver fails; a loss outside the United
// States also goes to the CSA ISO by email.
func TestWebhookAndCSAISO(t *testing.T) {
	secret := []byte("a-webhook-secret-of-some-length")
	secretFile := filepath.Join(t.TempDir(), "webhook.secret")
	os.WriteFile(secretFile, append(secret, '\n'), 0o600)

	var mu sync.Mutex
	var got []notify.Payload
	failures := 2 // the receiver is broken for its first two deliveries
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := notify.Verify(secret, body, r.Header.Get(notify.SignatureHeader), time.Now(), 5*time.Minute); err != nil {
			t.Errorf("delivery does not verify: %v", err)
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if failures > 0 {
			failures--
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		var p notify.Payload
		if err := json.Unmarshal(body, &p); err != nil {
			t.Errorf("payload: %v", err)
		}
		got = append(got, p)
	}))
	defer hook.Close()

	addr := freePort(t)
	smtpd := startSMTP(t, addr, filepath.Join(t.TempDir(), "mail"))
	e := testenv.New(t, "", server.WithSMTP("smtp://"+addr, "cordon@pd.example"), server.WithSweepInterval(100*time.Millisecond),
		server.WithWebhook(hook.URL+"/cordon", secretFile), server.WithCSAISO("csa-iso@state.example"))
	adm, err := server.OpenAdmin(context.Background(), e.DataDir, e.DSN)
	if err != nil {
		t.Fatal(err)
	}
	adm.AddUser(context.Background(), "laso@pd.example", "laso", "correct horse battery staple 42")
	adm.Close()
	dir := e.MustEnroll()
	a := e.StartAgent(dir)
	waitOnline(t, e, e.APIKey("laso"), a.DeviceID())

	var inc struct {
		ID       string `json:"id"`
		Severity string `json:"severity"`
	}
	if st := e.Do("POST", "/api/v1/incidents", e.APIKey("user"), map[string]any{"device_id": a.DeviceID(), "kind": "total_loss",
		"lock_state": "locked", "started_at": time.Now().UTC().Add(-time.Hour), "location": "Ciudad Juárez, MX", "outside_us": true,
		"description": "bag stolen on a transport run"}, &inc); st != 201 {
		t.Fatalf("report: %d", st)
	}
	testenv.Eventually(t, 30*time.Second, "the webhook delivery after two failures", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 1
	})
	p := got[0]
	if p.Event != "incident" || p.Incident.ID != inc.ID || p.Incident.Location != "Ciudad Juárez, MX" || !p.Incident.OutsideUS ||
		p.Incident.Severity != "critical" || p.Incident.Description != "bag stolen on a transport run" || !strings.Contains(p.Incident.Device, a.DeviceID()) {
		t.Fatalf("payload %+v", p)
	}
	testenv.Eventually(t, 30*time.Second, "mail to the LASO and the CSA ISO", func() bool { return len(smtpd.messages()) == 2 })
	to := ""
	for _, m := range smtpd.messages() {
		to += m
	}
	if !strings.Contains(to, "To: csa-iso@state.example") || !strings.Contains(to, "To: laso@pd.example") {
		t.Fatalf("recipients:\n%s", to)
	}
	var full struct {
		Notifications []struct {
			Channel  string `json:"channel"`
			Attempts int    `json:"attempts"`
		} `json:"notifications"`
	}
	e.Do("GET", "/api/v1/incidents/"+inc.ID, e.APIKey("laso"), nil, &full)
	for _, n := range full.Notifications {
		if n.Channel == "webhook" && n.Attempts != 3 {
			t.Errorf("webhook attempts %d, want 3 (two failures shown on the incident)", n.Attempts)
		}
	}
}

// TestBluetoothRequestNotifications: every step of a Bluetooth request
// reaches the webhook, and IT administrators are emailed when a request
// is endorsed and waits for them.
func TestBluetoothRequestNotifications(t *testing.T) {
	secret := []byte("another-webhook-secret-here")
	secretFile := filepath.Join(t.TempDir(), "webhook.secret")
	os.WriteFile(secretFile, secret, 0o600)
	var mu sync.Mutex
	var steps []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := notify.Verify(secret, body, r.Header.Get(notify.SignatureHeader), time.Now(), 5*time.Minute); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var p notify.BluetoothPayload
		json.Unmarshal(body, &p)
		mu.Lock()
		steps = append(steps, p.Event+":"+p.Reason)
		mu.Unlock()
	}))
	defer hook.Close()
	addr := freePort(t)
	smtpd := startSMTP(t, addr, filepath.Join(t.TempDir(), "mail"))
	e := testenv.New(t, "", server.WithSMTP("smtp://"+addr, "cordon@pd.example"), server.WithSweepInterval(100*time.Millisecond),
		server.WithWebhook(hook.URL, secretFile))
	adm, err := server.OpenAdmin(context.Background(), e.DataDir, e.DSN)
	if err != nil {
		t.Fatal(err)
	}
	adm.AddUser(context.Background(), "it@pd.example", "it-admin", "correct horse battery staple 42")
	adm.Close()
	user, sergeant, admin := e.APIKey("user"), e.APIKey("user"), e.APIKey("it-admin")
	a := e.StartAgent(e.MustEnroll())
	sup := supervisorName(t, e, sergeant)
	var req struct{ ID string }
	e.Do("POST", "/api/v1/bluetooth/requests", user, map[string]any{"device_id": a.DeviceID(), "address": "aa:bb:cc:dd:ee:02",
		"name": "ALPR camera link", "reason": "plate reader", "supervisor": sup}, &req)
	e.Do("POST", "/api/v1/bluetooth/requests/"+req.ID+"/endorse", sergeant, nil, nil)
	testenv.Eventually(t, 20*time.Second, "the IT admin emailed about the endorsed request", func() bool {
		for _, m := range smtpd.messages() {
			if strings.Contains(m, "To: it@pd.example") && strings.Contains(m, "AA:BB:CC:DD:EE:02") && strings.Contains(m, "endorsed") {
				return true
			}
		}
		return false
	})
	e.Do("POST", "/api/v1/bluetooth/requests/"+req.ID+"/approve", admin, map[string]any{"reason": "evaluated"}, nil)
	testenv.Eventually(t, 20*time.Second, "every step at the webhook", func() bool {
		mu.Lock()
		defer mu.Unlock()
		got := strings.Join(steps, ",")
		return strings.Contains(got, "bluetooth_request:filed") && strings.Contains(got, "bluetooth_request:endorsed") &&
			strings.Contains(got, "bluetooth_request:approved")
	})
}
