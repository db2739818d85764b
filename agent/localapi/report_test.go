package localapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/user"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/agent/state"
	"github.com/cordon-mdm/cordon/protocol"
)

func TestReportReporterFromPeer(t *testing.T) {
	fa := newFakeAgent()
	sock := serve(t, fa)
	r := validReport()
	r.Reporter = "mallory"
	got, err := Client{Socket: sock}.Report(context.Background(), r, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != "rep-1" || got.State != "filed" || got.Incident != "inc-9" {
		t.Errorf("report = %+v", got)
	}
	recv := fa.take()
	if len(recv) != 1 {
		t.Fatalf("agent got %d reports, want 1", len(recv))
	}
	rep := recv[0]
	if strings.Contains(rep.Reporter, "mallory") {
		t.Errorf("reporter %q was taken from the request", rep.Reporter)
	}
	for _, want := range expectedReporter(t) {
		if !strings.Contains(rep.Reporter, want) {
			t.Errorf("reporter = %q, want it to contain %q", rep.Reporter, want)
		}
	}
	rep.Reporter = ""
	want := validReport()
	if rep.DeviceID != want.DeviceID || rep.Kind != want.Kind || rep.LockState != want.LockState || !rep.StartedAt.Equal(want.StartedAt) ||
		rep.EndedAt == nil || !rep.EndedAt.Equal(*want.EndedAt) || rep.Location != want.Location || !rep.OutsideUS {
		t.Errorf("report = %+v, want %+v", rep, want)
	}
}

func TestReportOwnDevices(t *testing.T) {
	fa := newFakeAgent()
	sock := serve(t, fa)
	for _, dev := range []string{"", "self", "phone"} {
		r := validReport()
		r.DeviceID = dev
		if _, err := (Client{Socket: sock}).Report(context.Background(), r, 0); err != nil {
			t.Errorf("device %q: %v", dev, err)
		}
		if got := fa.take(); len(got) != 1 || got[0].DeviceID != dev {
			t.Errorf("device %q: agent got %+v", dev, got)
		}
	}
}

func TestReportOtherOwnersDevice(t *testing.T) {
	fa := newFakeAgent()
	sock := serve(t, fa)
	r := validReport()
	r.DeviceID = "someone-elses-phone"
	_, err := Client{Socket: sock}.Report(context.Background(), r, time.Second)
	if err == nil || !strings.Contains(err.Error(), "not one of this owner's devices") {
		t.Errorf("err = %v, want a refusal", err)
	}
	if errors.Is(err, ErrNotRunning) {
		t.Errorf("refusal reads as not running: %v", err)
	}
	if got := fa.take(); len(got) != 0 {
		t.Errorf("agent got %+v", got)
	}

	// With no list from the server, only this device may be reported.
	fa.mu.Lock()
	fa.status.Devices = nil
	fa.mu.Unlock()
	r.DeviceID = "phone"
	if _, err := (Client{Socket: sock}).Report(context.Background(), r, 0); err == nil || !strings.Contains(err.Error(), "not one of this owner's devices") {
		t.Errorf("phone with no device list: err = %v", err)
	}
	if got := fa.take(); len(got) != 0 {
		t.Errorf("agent got %+v", got)
	}
}

func TestReportInvalid(t *testing.T) {
	fa := newFakeAgent()
	sock := serve(t, fa)
	r := validReport()
	r.Kind = "stolen"
	_, err := Client{Socket: sock}.Report(context.Background(), r, time.Second)
	if err == nil || !strings.Contains(err.Error(), "kind must be") {
		t.Errorf("err = %v, want the agent's refusal", err)
	}
	if got := fa.take(); len(got) != 0 {
		t.Errorf("agent kept %+v", got)
	}
}

func TestReportMalformed(t *testing.T) {
	fa := newFakeAgent()
	sock := serve(t, fa)
	c := rawClient(t, sock)
	for name, body := range map[string]string{
		"unknown field": `{"kind":"total_loss","started_at":"2025-03-01T10:00:00Z","owner":"mallory"}`,
		"not json":      `kind=total_loss`,
		"empty":         ``,
		"wrong type":    `{"kind":1,"started_at":"2025-03-01T10:00:00Z"}`,
		"trailing data": `{"kind":"total_loss","started_at":"2025-03-01T10:00:00Z"} {"kind":"compromise"}`,
		"bad time":      `{"kind":"total_loss","started_at":"yesterday"}`,
		"stray brace":   `{"kind":"total_loss","started_at":"2025-03-01T10:00:00Z"}}`,
		"NUL in text":   `{"kind":"total_loss","started_at":"2025-03-01T10:00:00Z","location":"a\u0000b"}`,
		"invalid UTF-8": "{\"kind\":\"total_loss\",\"started_at\":\"2025-03-01T10:00:00Z\",\"description\":\"\xff\"}",
		"latitude 91":   `{"kind":"total_loss","started_at":"2025-03-01T10:00:00Z","latitude":91}`,
		"too large":     `{"kind":"total_loss","started_at":"2025-03-01T10:00:00Z","description":"` + strings.Repeat("x", maxBody) + `"}`,
	} {
		t.Run(name, func(t *testing.T) {
			resp, err := c.Post("http://agent/v1/reports", "application/json", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("status %d, want 400", resp.StatusCode)
			}
			var e struct{ Error string }
			if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || !strings.HasPrefix(e.Error, "malformed report") {
				t.Errorf("error = %q (%v)", e.Error, err)
			}
			if got := fa.take(); len(got) != 0 {
				t.Errorf("agent got %+v", got)
			}
		})
	}
}

func FuzzReportBody(f *testing.F) {
	valid, err := json.Marshal(validReport())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add([]byte(`{"kind":"loss_of_control","started_at":"2025-03-01T10:00:00Z","reporter":"mallory"}`))
	f.Add([]byte(`{"kind":"compromise","started_at":"2025-03-01T10:00:00Z","device_id":"self","latitude":91}`))
	f.Add([]byte(`{"kind":"total_loss","started_at":"2025-03-01T10:00:00Z","device_id":"stranger"}`))
	f.Add([]byte(`{"kind":"stolen","started_at":"2025-03-01T10:00:00Z"}`))
	f.Add([]byte(`{"kind":"total_loss","started_at":"2025-03-01T10:00:00Z","owner":"x"}`))
	f.Add([]byte(`{"kind":"total_loss","started_at":"2025-03-01T10:00:00Z"} trailing`))
	f.Add([]byte(`null`))
	f.Add([]byte(`[]`))
	f.Add([]byte(``))
	f.Add([]byte("\x00\xff{"))

	fa := newFakeAgent()
	sock := serve(f, fa)
	c := rawClient(f, sock)
	var peer []string
	if runtime.GOOS == "linux" {
		u, err := user.Current()
		if err != nil {
			f.Fatal(err)
		}
		peer = []string{u.Username, "uid " + strconv.Itoa(os.Getuid())}
	} else {
		peer = []string{"local user (unidentified)"}
	}

	f.Fuzz(func(t *testing.T, body []byte) {
		fa.take()
		resp, err := c.Post("http://agent/v1/reports", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		got := fa.take()
		switch resp.StatusCode {
		case http.StatusAccepted:
			if len(got) != 1 {
				t.Errorf("202 with %d reports kept", len(got))
			}
			var r state.Report
			if err := json.Unmarshal(b, &r); err != nil || r.State != "filed" || r.Incident != "inc-9" {
				t.Errorf("202 body %q (%v)", b, err)
			}
		case http.StatusBadRequest:
			if len(got) != 0 {
				t.Errorf("400 but kept %+v", got)
			}
		default:
			t.Fatalf("status %d, want 202 or 400: %s", resp.StatusCode, b)
		}
		for _, r := range got {
			if err := r.Check(); err != nil {
				t.Errorf("agent kept an invalid report %+v: %v", r, err)
			}
			for _, want := range peer {
				if !strings.Contains(r.Reporter, want) {
					t.Errorf("reporter = %q, not the peer (%q)", r.Reporter, want)
				}
			}
			switch r.DeviceID {
			case "", "self", "phone":
			default:
				t.Errorf("report about another owner's device %q went through", r.DeviceID)
			}
		}
	})
}

// TestBluetoothRequestCarriesThePeer: the requester is the socket's peer,
// whatever the body says; an incomplete request is refused.
func TestBluetoothRequestCarriesThePeer(t *testing.T) {
	a := newFakeAgent()
	c := Client{Socket: serve(t, a)}
	ctx := context.Background()
	got, err := c.RequestBluetooth(ctx, protocol.BluetoothRequest{Address: "AA:BB:CC:DD:EE:FF", Reason: "radio", Supervisor: "sgt", Requester: "mallory"}, 0)
	if err != nil || got.State != "filed" {
		t.Fatalf("request: %+v %v", got, err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.bt) != 1 || a.bt[0].Requester == "mallory" || a.bt[0].Requester == "" {
		t.Fatalf("kept %+v", a.bt)
	}
	a.mu.Unlock()
	_, err = c.RequestBluetooth(ctx, protocol.BluetoothRequest{Address: "AA:BB:CC:DD:EE:FF"}, 0)
	a.mu.Lock()
	if err == nil || len(a.bt) != 1 {
		t.Fatalf("incomplete request: %v, kept %d", err, len(a.bt))
	}
}
