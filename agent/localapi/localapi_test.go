package localapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/agent/state"
	"github.com/cordon-mdm/cordon/protocol"
)

// fakeAgent is the running agent: like the real one, it checks a report
// before it keeps it, and it keeps what it was given.
type fakeAgent struct {
	mu      sync.Mutex
	status  state.Status
	reports []protocol.IncidentReport
	bt      []protocol.BluetoothRequest
	n       int
}

func newFakeAgent() *fakeAgent {
	return &fakeAgent{status: state.Status{
		Connection: "connected",
		Since:      time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC),
		Devices:    []protocol.OwnedDevice{{ID: "self", Name: "laptop"}, {ID: "phone", Name: "phone", Platform: "android"}},
	}}
}

func (a *fakeAgent) DeviceID() string { return "self" }

func (a *fakeAgent) Status() state.Status {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.status
}

func (a *fakeAgent) Report(r protocol.IncidentReport) (string, error) {
	if err := r.Check(); err != nil {
		return "", err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.reports = append(a.reports, r)
	a.n++
	return "rep-" + strconv.Itoa(a.n), nil
}

func (a *fakeAgent) RequestBluetooth(r protocol.BluetoothRequest) (string, error) {
	if err := r.Check(); err != nil {
		return "", err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.bt = append(a.bt, r)
	a.n++
	return "rep-" + strconv.Itoa(a.n), nil
}

func (a *fakeAgent) WaitFiled(_ context.Context, id string) state.Report {
	return state.Report{ID: id, State: "filed", Incident: "inc-9"}
}

func (a *fakeAgent) take() []protocol.IncidentReport {
	a.mu.Lock()
	defer a.mu.Unlock()
	r := a.reports
	a.reports = nil
	return r
}

// serve listens on a fresh socket and serves a until the test ends.
func serve(tb testing.TB, a Agent) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "s")
	ln, err := Listen(path)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, a, slog.New(slog.DiscardHandler)) }()
	tb.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				tb.Errorf("Serve: %v", err)
			}
		case <-time.After(5 * time.Second):
			tb.Error("Serve did not return after its context ended")
		}
	})
	return path
}

// rawClient speaks HTTP over the socket, for requests Client cannot make.
func rawClient(tb testing.TB, sock string) *http.Client {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}
	tb.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// expectedReporter is what the agent should say about the current user.
func expectedReporter(t *testing.T) []string {
	t.Helper()
	if runtime.GOOS != "linux" {
		return []string{"local user (unidentified)"}
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	return []string{u.Username, "uid " + strconv.Itoa(os.Getuid())}
}

func validReport() protocol.IncidentReport {
	end := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	return protocol.IncidentReport{
		DeviceID:  "phone",
		Kind:      "total_loss",
		LockState: "locked",
		StartedAt: time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC),
		EndedAt:   &end,
		Location:  "bus 42",
		OutsideUS: true,
	}
}

func TestStatus(t *testing.T) {
	fa := newFakeAgent()
	sock := serve(t, fa)
	st, err := Client{Socket: sock}.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.DeviceID != "self" || st.Connection != "connected" || !st.Since.Equal(fa.status.Since) {
		t.Errorf("status = %+v", st)
	}
	if st.Compliance != protocol.ComplianceUnknown {
		t.Errorf("compliance = %q, want %q when the server has not spoken", st.Compliance, protocol.ComplianceUnknown)
	}
	if len(st.Devices) != 2 || st.Devices[0].ID != "self" || st.Devices[1].ID != "phone" || st.Devices[1].Platform != "android" {
		t.Errorf("devices = %+v", st.Devices)
	}
	if st.Reports == nil || len(st.Reports) != 0 {
		t.Errorf("reports = %#v, want empty", st.Reports)
	}
}

func TestStatusServerWord(t *testing.T) {
	fa := newFakeAgent()
	fa.status.Compliance = protocol.ComplianceQuarantined
	fa.status.Quarantine = "disk not encrypted"
	fa.status.Devices = nil
	fa.status.Reports = []state.Report{{ID: "a", State: "spooled"}}
	sock := serve(t, fa)
	st, err := Client{Socket: sock}.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Compliance != protocol.ComplianceQuarantined || st.Quarantine != "disk not encrypted" {
		t.Errorf("compliance = %q / %q", st.Compliance, st.Quarantine)
	}
	// With no word from the server about the owner's devices, this one is listed.
	if len(st.Devices) != 1 || st.Devices[0].ID != "self" {
		t.Errorf("devices = %+v", st.Devices)
	}
	if len(st.Reports) != 1 || st.Reports[0].ID != "a" {
		t.Errorf("reports = %+v", st.Reports)
	}
}

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

func TestRoutes(t *testing.T) {
	sock := serve(t, newFakeAgent())
	c := rawClient(t, sock)
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{http.MethodPost, "/v1/status", http.StatusMethodNotAllowed},
		{http.MethodGet, "/v1/reports", http.StatusMethodNotAllowed},
		{http.MethodGet, "/v1/other", http.StatusNotFound},
	} {
		req, err := http.NewRequest(tc.method, "http://agent"+tc.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, resp.StatusCode, tc.want)
		}
	}
}

func TestListenAlreadyListening(t *testing.T) {
	sock := serve(t, newFakeAgent())
	ln, err := Listen(sock)
	if err == nil {
		ln.Close()
		t.Fatal("Listen took the socket of a running agent")
	}
	if !strings.Contains(err.Error(), "already listening") {
		t.Errorf("err = %v", err)
	}
	// The running agent still answers.
	if _, err := (Client{Socket: sock}).Status(context.Background()); err != nil {
		t.Errorf("running agent lost its socket: %v", err)
	}
}

func TestListenReplacesStaleSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s")
	old, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	old.(*net.UnixListener).SetUnlinkOnClose(false)
	old.Close()
	if fi, err := os.Lstat(path); err != nil || fi.Mode().Type() != os.ModeSocket {
		t.Fatalf("no stale socket left: %v %v", fi, err)
	}

	ln, err := Listen(path)
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o666 {
		t.Errorf("socket mode = %v, want a socket with 0666", fi.Mode())
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, newFakeAgent(), slog.New(slog.DiscardHandler)) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	if st, err := (Client{Socket: path}).Status(context.Background()); err != nil || st.DeviceID != "self" {
		t.Errorf("Status over the new socket: %+v, %v", st, err)
	}
}

func TestListenFresh(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s")
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o666 {
		t.Errorf("socket mode = %v, want a socket with 0666", fi.Mode())
	}
}

func TestClientNotRunning(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nothing-here")
	_, err := Client{Socket: path}.Status(context.Background())
	if !errors.Is(err, ErrNotRunning) {
		t.Errorf("Status: err = %v, want ErrNotRunning", err)
	}
	_, err = Client{Socket: path}.Report(context.Background(), validReport(), time.Second)
	if !errors.Is(err, ErrNotRunning) {
		t.Errorf("Report: err = %v, want ErrNotRunning", err)
	}

	// A stale socket with nobody behind it is not running either.
	stale := filepath.Join(t.TempDir(), "s")
	old, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	old.(*net.UnixListener).SetUnlinkOnClose(false)
	old.Close()
	if _, err := (Client{Socket: stale}).Status(context.Background()); !errors.Is(err, ErrNotRunning) {
		t.Errorf("stale socket: err = %v, want ErrNotRunning", err)
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

func TestListenLeavesNonSocketsAlone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.sock")
	os.WriteFile(path, []byte("not a socket"), 0o600)
	if _, err := Listen(path); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("Listen over a regular file: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "not a socket" {
		t.Fatal("the file was replaced")
	}
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
