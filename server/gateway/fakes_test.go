package gateway

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/store"
)

// The fakes stand in for the gateway's narrow interfaces: the unit under
// test here is the gateway (its handshake checks, its dispatch, its
// contexts); the integration tests run it on the real store.

// fakeStore keeps devices and certificates in maps and records calls.
type fakeStore struct {
	mu      sync.Mutex
	devices map[string]*store.Device
	certs   map[string]*store.Certificate
	certErr error // GetCertificate fails with it when set
	hellos  []store.HelloFacts
	reports map[string]bool
	saveErr error
	// onSave, when set, runs first in SavePosture with its context; what
	// it returns is SavePosture's error.
	onSave       func(ctx context.Context) error
	connected    int
	disconnected chan error // ctx.Err() of each MarkDisconnected
	servers      []string   // "connected:<server>", "disconnected:<server>", in order
}

func newFakeStore() *fakeStore {
	return &fakeStore{devices: map[string]*store.Device{}, certs: map[string]*store.Certificate{},
		reports: map[string]bool{}, disconnected: make(chan error, 8)}
}

func (s *fakeStore) GetDevice(_ context.Context, id string) (*store.Device, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.devices[id]
	if !ok {
		return nil, store.ErrNotFound
	}
	cp := *d
	return &cp, nil
}

func (s *fakeStore) HandshakeDevice(_ context.Context, id string) (*store.DeviceIdentity, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.devices[id]
	if !ok {
		return nil, store.ErrNotFound
	}
	return &store.DeviceIdentity{ID: d.ID, Status: d.Status, EnrolledAt: d.EnrolledAt}, nil
}

// AppendAudit is the transaction's side of an audit entry: the fake
// auditor keeps the entry itself.
func (s *fakeStore) AppendAudit(context.Context, *store.AuditEntry, func(*store.AuditEntry)) error {
	return nil
}

func (s *fakeStore) HandshakeCertificate(_ context.Context, serial string) (*store.Certificate, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.certErr != nil {
		return nil, s.certErr
	}
	c, ok := s.certs[serial]
	if !ok {
		return nil, store.ErrNotFound
	}
	cp := *c
	return &cp, nil
}

func (s *fakeStore) MarkConnected(_ context.Context, _, _ string, _ time.Time, server string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.connected++
	s.servers = append(s.servers, "connected:"+server)
	return nil
}

func (s *fakeStore) MarkDisconnected(ctx context.Context, _ string, _ time.Time, server string) error {
	s.mu.Lock()
	s.servers = append(s.servers, "disconnected:"+server)
	s.mu.Unlock()
	s.disconnected <- ctx.Err()
	return ctx.Err()
}

func (s *fakeStore) UpdateHello(_ context.Context, _ string, f store.HelloFacts) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hellos = append(s.hellos, f)
	return nil
}

func (s *fakeStore) SavePosture(ctx context.Context, r *store.PostureReport, _ *store.LockEvent) (bool, error) {
	s.mu.Lock()
	on, saveErr := s.onSave, s.saveErr
	s.mu.Unlock()
	if on != nil {
		if err := on(ctx); err != nil {
			return false, err
		}
	}
	if saveErr != nil {
		return false, saveErr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	dup := s.reports[r.ReportID]
	s.reports[r.ReportID] = true
	return dup, nil
}

func (s *fakeStore) AddCertificate(_ context.Context, c *store.Certificate) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.certs[c.Serial] = c
	return nil
}

func (s *fakeStore) helloFacts() []store.HelloFacts {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]store.HelloFacts(nil), s.hellos...)
}

func (s *fakeStore) savedReports() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.reports)
}

// fakeAuditor keeps every entry.
type fakeAuditor struct {
	mu      sync.Mutex
	entries []audit.Entry
}

func (a *fakeAuditor) Record(_ context.Context, e audit.Entry) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.entries = append(a.entries, e)
	return nil
}

func (a *fakeAuditor) RecordTx(ctx context.Context, _ audit.Appender, e audit.Entry) error {
	return a.Record(ctx, e)
}

func (a *fakeAuditor) of(action string) []audit.Entry {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []audit.Entry
	for _, e := range a.entries {
		if e.Action == action {
			out = append(out, e)
		}
	}
	return out
}

// fakeCommands records Ready and answers Result as told.
type fakeCommands struct {
	mu        sync.Mutex
	ready     int
	results   []protocol.CommandResult
	resultErr error
	after     func()
	// onResult, when set, runs first in Result with its context.
	onResult func(ctx context.Context)
}

func (c *fakeCommands) Ready(context.Context, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ready++
}

func (c *fakeCommands) Result(ctx context.Context, _, _ string, r protocol.CommandResult) (func(), error) {
	c.mu.Lock()
	on := c.onResult
	c.mu.Unlock()
	if on != nil {
		on(ctx)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.resultErr != nil {
		return nil, c.resultErr
	}
	c.results = append(c.results, r)
	return c.after, nil
}

func (c *fakeCommands) readyCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ready
}

// fakeIncidents opens incident "inc-1" or refuses, and says the device is
// compliant.
type fakeIncidents struct {
	refuse error
}

func (i *fakeIncidents) Report(context.Context, string, string, string, protocol.IncidentReport, time.Duration) (string, error) {
	if i.refuse != nil {
		return "", i.refuse
	}
	return "inc-1", nil
}

func (i *fakeIncidents) State(context.Context, string) (protocol.DeviceState, error) {
	return protocol.DeviceState{Compliance: "compliant"}, nil
}

// logRecorder keeps each log record's level and message.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecorder) WithGroup(string) slog.Handler            { return l }

func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, r.Level.String()+" "+r.Message)
	return nil
}

func (l *logRecorder) count(msg string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, m := range l.msgs {
		if m == msg {
			n++
		}
	}
	return n
}
