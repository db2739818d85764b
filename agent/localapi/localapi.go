// Package localapi is the agent's API for the people at the device: the
// tray and `cordon-agent report` talk to the running agent over a Unix
// socket, so the service keeps the device's key and channel to itself
// while any local user can report a loss or see where the device stands.
// The agent learns who is asking from the socket's peer credentials,
// never from the request.
package localapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/cordon-mdm/cordon/agent/state"
	"github.com/cordon-mdm/cordon/internal/input"
	"github.com/cordon-mdm/cordon/protocol"
)

// Agent is the running agent as the local API sees it.
type Agent interface {
	DeviceID() string
	Status() state.Status
	Report(r protocol.IncidentReport) (string, error)
	RequestBluetooth(r protocol.BluetoothRequest) (string, error)
	WaitFiled(ctx context.Context, id string) state.Report
}

// Status is GET /v1/status.
type Status struct {
	DeviceID   string                 `json:"device_id"`
	Connection string                 `json:"connection"`
	Since      time.Time              `json:"since"`
	LastError  string                 `json:"last_error,omitempty"`
	Compliance string                 `json:"compliance"`
	Quarantine string                 `json:"quarantine,omitempty"`
	Devices    []protocol.OwnedDevice `json:"devices"`
	Reports    []state.Report         `json:"reports"`
	// Bluetooth are the peers in the last report, for asking approval.
	Bluetooth []protocol.BluetoothDevice `json:"bluetooth"`
}

// maxBody bounds a report request.
const maxBody = 64 << 10

// Listen opens the socket at path, replacing a stale one, reachable by
// every local user: who may report is decided per request from the
// peer's credentials, and nothing here can change the device.
func Listen(path string) (net.Listener, error) {
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("%s: another agent is already listening", path)
	}
	// Only a leftover socket is ours to replace; anything else at the
	// path is a mistake in --socket, not something to delete.
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("%s exists and is not a socket", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, err
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o666); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// Serve answers on ln until ctx ends.
func Serve(ctx context.Context, ln net.Listener, a Agent, log *slog.Logger) error {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		st := a.Status()
		out := Status{DeviceID: a.DeviceID(), Connection: st.Connection, Since: st.Since, LastError: st.LastError,
			Compliance: orUnknown(st.Compliance), Quarantine: st.Quarantine, Devices: devices(a.DeviceID(), st.Devices), Reports: nonNil(st.Reports),
			Bluetooth: []protocol.BluetoothDevice{}}
		if p := st.LastPosture; p != nil && p.Bluetooth != nil {
			out.Bluetooth = append(out.Bluetooth, p.Bluetooth.Devices...)
		}
		write(w, http.StatusOK, out)
	})
	mux.HandleFunc("POST /v1/reports", func(w http.ResponseWriter, r *http.Request) {
		var rep protocol.IncidentReport
		if !decodeBody(w, r, &rep, "report") {
			return
		}
		// Who filed it is what the kernel says, not what the body says.
		rep.Reporter = peerName(r.Context())
		if rep.DeviceID != "" && rep.DeviceID != a.DeviceID() && !owned(a.Status().Devices, rep.DeviceID) {
			write(w, http.StatusBadRequest, map[string]string{"error": "device " + rep.DeviceID + " is not one of this owner's devices"})
			return
		}
		id, err := a.Report(rep)
		if err != nil {
			write(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		log.Info("incident report filed locally", "report", id, "kind", rep.Kind, "reporter", rep.Reporter)
		answerFiled(w, r, a, id)
	})
	mux.HandleFunc("POST /v1/bluetooth-requests", func(w http.ResponseWriter, r *http.Request) {
		var req protocol.BluetoothRequest
		if !decodeBody(w, r, &req, "request") {
			return
		}
		req.Requester = peerName(r.Context())
		id, err := a.RequestBluetooth(req)
		if err != nil {
			write(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		log.Info("Bluetooth approval requested locally", "report", id, "address", req.Address, "requester", req.Requester)
		answerFiled(w, r, a, id)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ConnContext: withPeer}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	err := srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// decodeBody reads the body through input.DecodeJSON, the path the
// server's edges use (one bounded JSON document, no unknown fields,
// valid text, then the body's Check), or answers 400 naming what was
// malformed.
func decodeBody(w http.ResponseWriter, r *http.Request, v any, what string) bool {
	if err := input.DecodeJSON(http.MaxBytesReader(w, r.Body, maxBody), v, maxBody); err != nil {
		write(w, http.StatusBadRequest, map[string]string{"error": "malformed " + what + ": " + err.Error()})
		return false
	}
	return true
}

// answerFiled waits up to ?wait= (at most 30 s) for the server's answer
// to what was filed, and returns it as tracked: filed, refused or still
// spooled.
func answerFiled(w http.ResponseWriter, r *http.Request, a Agent, id string) {
	wait, _ := time.ParseDuration(r.URL.Query().Get("wait"))
	ctx, cancel := context.WithTimeout(r.Context(), min(max(wait, 0), 30*time.Second))
	defer cancel()
	write(w, http.StatusAccepted, a.WaitFiled(ctx, id))
}

func devices(self string, ds []protocol.OwnedDevice) []protocol.OwnedDevice {
	if len(ds) == 0 {
		return []protocol.OwnedDevice{{ID: self, Name: "this device"}}
	}
	return ds
}

func owned(ds []protocol.OwnedDevice, id string) bool {
	for _, d := range ds {
		if d.ID == id {
			return true
		}
	}
	return false
}

func orUnknown(s string) string {
	if s == "" {
		return protocol.ComplianceUnknown
	}
	return s
}

func nonNil(rs []state.Report) []state.Report {
	if rs == nil {
		return []state.Report{}
	}
	return rs
}

func write(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// Client talks to a running agent.
type Client struct {
	// Socket is the agent's socket; empty tries state.SocketCandidates.
	Socket string
}

// ErrNotRunning means no agent answers on the socket.
var ErrNotRunning = errors.New("the Cordon agent is not running (no answer on its socket)")

func (c Client) do(ctx context.Context, method, path string, body, out any) error {
	paths := []string{c.Socket}
	if c.Socket == "" {
		paths = state.SocketCandidates()
	}
	var errs []error
	for _, p := range paths {
		err := c.call(ctx, p, method, path, body, out)
		if err == nil || !isDialError(err) {
			return err
		}
		errs = append(errs, err)
	}
	return fmt.Errorf("%w: %v", ErrNotRunning, errors.Join(errs...))
}

type dialError struct{ error }

func isDialError(err error) bool {
	var d dialError
	return errors.As(err, &d)
}

func (c Client) call(ctx context.Context, sock, method, path string, body, out any) error {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "unix", sock)
		if err != nil {
			return nil, dialError{err}
		}
		return conn, nil
	}}
	defer tr.CloseIdleConnections()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://agent"+path, rd)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var e struct {
			Error string `json:"error"`
		}
		json.NewDecoder(io.LimitReader(resp.Body, maxBody)).Decode(&e)
		if e.Error == "" {
			e.Error = resp.Status
		}
		return fmt.Errorf("agent: %s", e.Error)
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(out)
}

// Status asks the agent where it stands.
func (c Client) Status(ctx context.Context) (Status, error) {
	var s Status
	err := c.do(ctx, http.MethodGet, "/v1/status", nil, &s)
	return s, err
}

// RequestBluetooth asks for approval of a Bluetooth device and waits up
// to wait for the server's answer.
func (c Client) RequestBluetooth(ctx context.Context, r protocol.BluetoothRequest, wait time.Duration) (state.Report, error) {
	var out state.Report
	err := c.do(ctx, http.MethodPost, "/v1/bluetooth-requests?wait="+wait.String(), r, &out)
	return out, err
}

// Report files r and waits up to wait for the server's answer.
func (c Client) Report(ctx context.Context, r protocol.IncidentReport, wait time.Duration) (state.Report, error) {
	var out state.Report
	err := c.do(ctx, http.MethodPost, "/v1/reports?wait="+wait.String(), r, &out)
	return out, err
}
