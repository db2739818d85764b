package localapi

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
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
