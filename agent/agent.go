// Package agent is the Cordon agent's runtime: it keeps one mutual-TLS
// websocket to the gateway, sends posture at connect, on change and on a
// slow interval, and never drops a report the server has not acknowledged.
package agent

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/url"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"

	"github.com/cordon-mdm/cordon/agent/actions"
	"github.com/cordon-mdm/cordon/agent/posture"
	"github.com/cordon-mdm/cordon/agent/spool"
	"github.com/cordon-mdm/cordon/agent/state"
	"github.com/cordon-mdm/cordon/internal/fips"
	"github.com/cordon-mdm/cordon/internal/wshandshake"
	"github.com/cordon-mdm/cordon/pki/identity"
	"github.com/cordon-mdm/cordon/protocol"
)

// Observer receives events; tests use it to prove delivery guarantees.
type Observer struct {
	Sent  func(reportID string) // a report frame was written to the socket
	Acked func(reportID string) // the server acknowledged it
}

// Agent is a running agent.
type Agent struct {
	dir       state.Dir
	cfg       *state.Config
	spool     *spool.Spool
	reports   *spool.Spool // incident reports: never dropped
	collector posture.Collector
	log       *slog.Logger
	version   string
	obs       Observer
	fips      bool
	exec      actions.Executor
	seen      *seenLog

	// A wipe in progress: its answer's id and a channel closed when the
	// server acknowledges it.
	wipeMu       sync.Mutex
	wipeRef      string
	wipeAcked    chan struct{}
	wipePowerOff bool // step 4 of the plan, taken once the identity is gone
	wiped        atomic.Bool
	stopRun      context.CancelFunc

	reportInterval time.Duration
	pollInterval   time.Duration
	backoffBase    time.Duration
	backoffMax     time.Duration
	renewCheck     time.Duration
	readTimeout    time.Duration
	spoolSize      int

	trigger    chan struct{}
	reportKick chan struct{}
	last       []byte // fingerprint of the last posture captured; Run's goroutine only
	statusMu   sync.Mutex
	status     state.Status
	// reportsChanged is closed and replaced on every status change, so
	// WaitFiled can wait without polling.
	reportsChanged chan struct{}
}

// Option configures an Agent.
type Option func(*Agent)

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(a *Agent) { a.log = l } }

// WithCollector replaces the system posture collector.
func WithCollector(c posture.Collector) Option { return func(a *Agent) { a.collector = c } }

// WithVersion sets the version reported in hello and posture.
func WithVersion(v string) Option { return func(a *Agent) { a.version = v } }

// WithReportInterval sets the slow periodic report (default 15 minutes).
func WithReportInterval(d time.Duration) Option { return func(a *Agent) { a.reportInterval = d } }

// WithPollInterval sets how often posture is checked for changes (default
// 5 s: only the lock state is read fresh, the rest comes from the
// collector's cache, so a poll is cheap).
func WithPollInterval(d time.Duration) Option { return func(a *Agent) { a.pollInterval = d } }

// WithBackoff sets the reconnect backoff: full jitter over a base that
// doubles per failed attempt up to max.
func WithBackoff(base, max time.Duration) Option {
	return func(a *Agent) { a.backoffBase, a.backoffMax = base, max }
}

// WithRenewCheck sets how often certificate expiry is checked.
func WithRenewCheck(d time.Duration) Option { return func(a *Agent) { a.renewCheck = d } }

// WithSpoolSize bounds the on-disk spool.
func WithSpoolSize(n int) Option { return func(a *Agent) { a.spoolSize = n } }

// WithFIPS restricts TLS to what FIPS 140-3 mode allows. It defaults to on
// in FIPS builds; New refuses it unless the process runs the frozen module
// (see internal/fips).
func WithFIPS(on bool) Option { return func(a *Agent) { a.fips = on } }

// WithExecutor replaces the system's command executor (tests).
func WithExecutor(e actions.Executor) Option { return func(a *Agent) { a.exec = e } }

// WithObserver sets event callbacks.
func WithObserver(o Observer) Option { return func(a *Agent) { a.obs = o } }

// New loads an enrolled state dir.
func New(dir state.Dir, opts ...Option) (*Agent, error) {
	a := &Agent{dir: dir, log: slog.New(slog.DiscardHandler), version: "dev",
		reportInterval: 15 * time.Minute, pollInterval: 5 * time.Second,
		backoffBase: time.Second, backoffMax: 5 * time.Minute, renewCheck: time.Hour,
		readTimeout: 90 * time.Second, spoolSize: 1000, trigger: make(chan struct{}, 1), fips: fips.Default(),
		reportKick: make(chan struct{}, 1), reportsChanged: make(chan struct{})}
	for _, o := range opts {
		o(a)
	}
	if a.fips {
		if err := fips.Current().Check(); err != nil {
			return nil, err
		}
	}
	var err error
	if a.cfg, err = dir.LoadConfig(); err != nil {
		return nil, err
	}
	if a.collector == nil {
		a.collector = posture.NewSystem(a.version, posture.WithSightings(dir), posture.WithLogger(a.log))
	}
	if a.seen, err = loadSeen(dir.Path); err != nil {
		return nil, err
	}
	if a.exec == nil {
		cfg, err := actions.LoadWipeConfig(filepath.Join(dir.Path, WipeConfigFile))
		if err != nil {
			return nil, fmt.Errorf("wipe config: %w", err)
		}
		a.exec = actions.New(cfg)
	}
	if a.spool, err = spool.Open(dir.SpoolDir(), a.spoolSize); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	if a.reports, err = spool.Open(dir.ReportsDir(), maxReports); err != nil {
		return nil, fmt.Errorf("reports spool: %w", err)
	}
	// What the last run knew (compliance, the owner's devices, reports)
	// stands until the server says otherwise.
	if st, err := dir.LoadStatus(); err == nil {
		a.status.Compliance, a.status.Quarantine, a.status.Devices, a.status.Reports = st.Compliance, st.Quarantine, st.Devices, st.Reports
	}
	return a, nil
}

// DeviceID is this device's id.
func (a *Agent) DeviceID() string { return a.cfg.DeviceID }

// ReportNow asks for a posture report at once (tray, tests).
func (a *Agent) ReportNow() {
	select {
	case a.trigger <- struct{}{}:
	default:
	}
}

// Spooled is the number of unacknowledged reports.
func (a *Agent) Spooled() int { return a.spool.Len() }

// Run connects and reconnects until ctx is done.
func (a *Agent) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	a.wipeMu.Lock()
	a.stopRun = cancel
	a.wipeMu.Unlock()
	err := a.run(ctx)
	if a.wiped.Load() {
		a.setStatus(func(s *state.Status) { s.Connection = "wiped"; s.LastError = ErrWiped.Error() })
		return ErrWiped
	}
	return err
}

func (a *Agent) run(ctx context.Context) error {
	if w, ok := a.collector.(posture.LockWatcher); ok {
		go func() {
			err := w.WatchLock(ctx, a.ReportNow)
			if err != nil && !errors.Is(err, errors.ErrUnsupported) && ctx.Err() == nil {
				a.log.Warn("lock changes are not watched; polling only", "err", err)
			}
		}()
	}
	attempt := 0
	for {
		a.setStatus(func(s *state.Status) { s.Connection = "connecting" })
		established, err := a.session(ctx)
		if ctx.Err() != nil {
			a.setStatus(func(s *state.Status) { s.Connection = "stopped"; s.LastError = "" })
			return nil
		}
		if established {
			attempt = 0
		}
		delay := a.backoff(attempt)
		attempt++
		a.log.Warn("gateway connection ended; reconnecting", "err", err, "retry_in", delay.Round(time.Millisecond))
		a.setStatus(func(s *state.Status) {
			s.Connection = "disconnected"
			if err != nil {
				s.LastError = err.Error()
			}
		})
		if err := a.offline(ctx, delay); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// offline waits out a reconnect delay while still capturing posture on
// the poll interval and on triggers (lock changes), so the spool holds
// what happened while the server could not be reached.
func (a *Agent) offline(ctx context.Context, delay time.Duration) error {
	wait := time.NewTimer(delay)
	defer wait.Stop()
	poll := time.NewTicker(a.pollInterval)
	defer poll.Stop()
	for {
		var force bool
		select {
		case <-ctx.Done():
			return nil
		case <-wait.C:
			return nil
		case <-poll.C:
		case <-a.trigger:
			force = true
		}
		if _, _, err := a.capture(ctx, force); err != nil {
			return err
		}
	}
}

// backoff is "full jitter": uniform in [0, min(max, base·2^attempt)), so
// a fleet reconnecting after a server restart spreads out instead of
// arriving in lockstep.
func (a *Agent) backoff(attempt int) time.Duration {
	ceil := a.backoffMax
	if attempt < 30 {
		ceil = min(a.backoffMax, a.backoffBase<<attempt)
	}
	if ceil <= 0 {
		return 0
	}
	n, err := rand.Int(rand.Reader, big.NewInt(int64(ceil)))
	if err != nil {
		return ceil
	}
	return time.Duration(n.Int64())
}

type session struct {
	a       *Agent
	ws      *websocket.Conn
	ctx     context.Context // ends with the connection
	renewID string
	results chan []byte // command answers to write
}

func (a *Agent) dial(ctx context.Context) (*websocket.Conn, error) {
	cert, err := a.dir.Certificate()
	if err != nil {
		return nil, fmt.Errorf("device certificate: %w", err)
	}
	roots, err := a.dir.Roots()
	if err != nil {
		return nil, fmt.Errorf("pinned root: %w", err)
	}
	u, err := url.Parse(a.cfg.GatewayURL)
	if err != nil {
		return nil, err
	}
	d := websocket.Dialer{HandshakeTimeout: 15 * time.Second, ReadBufferSize: 1024, WriteBufferSize: 4096}
	cfg := fips.TLS(a.fips)
	cfg.RootCAs, cfg.ServerName, cfg.Certificates = roots, u.Hostname(), []tls.Certificate{*cert}
	ws, resp, err := wshandshake.Dial(ctx, d, a.cfg.GatewayURL, cfg, nil)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("gateway refused: %s", resp.Status)
		}
		return nil, err
	}
	return ws, nil
}

// session runs one connection. established says whether the server
// accepted us (hello acknowledged), which resets the backoff.
func (a *Agent) session(ctx context.Context) (established bool, err error) {
	ws, err := a.dial(ctx)
	if err != nil {
		return false, err
	}
	defer ws.Close()
	s := &session{a: a, ws: ws, results: make(chan []byte, 16)}
	ws.SetReadLimit(protocol.MaxFrameBytes)
	ws.SetReadDeadline(time.Now().Add(a.readTimeout))
	ws.SetPingHandler(func(data string) error {
		ws.SetReadDeadline(time.Now().Add(a.readTimeout))
		return ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(10*time.Second))
	})
	incoming := make(chan protocol.Envelope, 16)
	readErr := make(chan error, 1)
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.ctx = sctx
	go func() {
		for {
			_, data, err := ws.ReadMessage()
			if err != nil {
				readErr <- err
				return
			}
			ws.SetReadDeadline(time.Now().Add(a.readTimeout))
			env, err := protocol.Decode(data)
			if err != nil {
				a.log.Warn("undecodable frame from server", "err", err)
				continue
			}
			select {
			case incoming <- env:
			case <-sctx.Done():
				return
			}
		}
	}()

	helloID := uuid.NewString()
	if err := s.write(protocol.TypeHello, helloID, protocol.Hello{AgentVersion: a.version,
		Platform: runtime.GOOS + "/" + runtime.GOARCH, Hostname: hostname(), Capabilities: protocol.AgentCapabilities,
		CapabilityVersion: protocol.CurrentCapabilityVersion}); err != nil {
		return false, err
	}
	// Unacknowledged reports go first, oldest first, exactly as spooled:
	// the server deduplicates by report id, so a report whose ack was
	// lost is harmless to send again.
	pending, err := a.spool.Pending()
	if err != nil {
		return false, err
	}
	for _, it := range pending {
		if err := s.writeRaw(it.Frame); err != nil {
			return false, err
		}
		a.sent(it.ID)
	}
	if err := s.sendReports(); err != nil {
		return false, err
	}
	if err := s.report(ctx, true); err != nil {
		return false, err
	}
	s.maybeRenew()

	report := time.NewTicker(a.reportInterval)
	defer report.Stop()
	poll := time.NewTicker(a.pollInterval)
	defer poll.Stop()
	renew := time.NewTicker(a.renewCheck)
	defer renew.Stop()
	for {
		select {
		case <-ctx.Done():
			ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "agent stopping"), time.Now().Add(time.Second))
			return established, nil
		case err := <-readErr:
			return established, err
		case env := <-incoming:
			if env.Type == protocol.TypeAck && !established {
				var ack protocol.Ack
				if protocol.DecodeBody(env, &ack) == nil && ack.Ref == helloID {
					established = true
					a.setStatus(func(st *state.Status) { st.Connection = "connected"; st.LastError = "" })
					a.log.Info("connected to gateway", "device_id", a.cfg.DeviceID, "url", a.cfg.GatewayURL)
				}
			}
			s.handle(env)
		case <-report.C:
			err = s.report(ctx, true)
		case <-poll.C:
			err = s.report(ctx, false)
		case <-a.trigger:
			err = s.report(ctx, true)
		case <-renew.C:
			s.maybeRenew()
		case <-a.reportKick:
			err = s.sendReports()
		case frame := <-s.results:
			if err = s.writeRaw(frame); err == nil {
				a.sent(resultID(frame))
			}
		}
		if err != nil {
			return established, err
		}
	}
}

func (s *session) write(typ, id string, body any) error {
	frame, err := protocol.Encode(typ, id, time.Now(), body)
	if err != nil {
		return err
	}
	return s.writeRaw(frame)
}

func (s *session) writeRaw(frame []byte) error {
	s.ws.SetWriteDeadline(time.Now().Add(15 * time.Second))
	return s.ws.WriteMessage(websocket.TextMessage, frame)
}

// report captures posture and, when there is a new report, sends it.
func (s *session) report(ctx context.Context, force bool) error {
	id, frame, err := s.a.capture(ctx, force)
	if err != nil || frame == nil {
		return err
	}
	if err := s.writeRaw(frame); err != nil {
		return err
	}
	s.a.sent(id)
	return nil
}

// capture collects posture and, when forced or changed since the last
// capture, spools it durably and returns the frame to send. It also runs
// while the agent is disconnected, so a lock change made offline reaches
// the server's timeline with the time it happened.
func (a *Agent) capture(ctx context.Context, force bool) (id string, frame []byte, err error) {
	p, err := a.collector.Collect(ctx)
	if err != nil {
		a.log.Warn("posture collection failed", "err", err)
		return "", nil, nil
	}
	// Where the key lives is the agent's to say, not the OS collector's.
	p.Identity = &protocol.Identity{KeyStorage: a.dir.KeyStore().Kind()}
	fp := fingerprint(p)
	if !force && bytes.Equal(fp, a.last) {
		return "", nil, nil
	}
	id = uuid.NewString()
	if frame, err = protocol.Encode(protocol.TypePosture, id, time.Now(), p); err != nil {
		return "", nil, err
	}
	if err := a.spool.Put(id, frame); err != nil {
		return "", nil, fmt.Errorf("spool report: %w", err)
	}
	a.last = fp
	a.setStatus(func(st *state.Status) { st.LastPosture = &p; st.Spooled = a.spool.Len() })
	return id, frame, nil
}

// fingerprint is what "changed" means: everything but the collection
// time and the idle counters, which move on every reading and would turn
// each poll into a report.
func fingerprint(p protocol.Posture) []byte {
	p.CollectedAt = time.Time{}
	if p.Lock != nil {
		l := *p.Lock
		l.IdleSeconds, l.IdleSince = nil, nil
		p.Lock = &l
	}
	b, _ := json.Marshal(p)
	return b
}

func (s *session) handle(env protocol.Envelope) {
	a := s.a
	switch env.Type {
	case protocol.TypeAck:
		var ack protocol.Ack
		if err := protocol.DecodeBody(env, &ack); err != nil {
			return
		}
		if a.reports.Has(ack.Ref) {
			a.reportAnswered(ack.Ref, ack, "")
			return
		}
		if err := a.spool.Remove(ack.Ref); err != nil {
			a.log.Error("spool remove", "err", err)
		}
		now := time.Now().UTC()
		a.setStatus(func(st *state.Status) { st.LastAckAt = &now; st.Spooled = a.spool.Len() })
		a.acked(ack.Ref)
		if a.obs.Acked != nil {
			a.obs.Acked(ack.Ref)
		}
	case protocol.TypeError:
		var e protocol.Error
		if err := protocol.DecodeBody(env, &e); err != nil {
			return
		}
		a.log.Warn("server refused a frame", "ref", e.Ref, "code", e.Code, "message", e.Message)
		// A frame the server will never accept is dropped; one it could
		// not store is kept for the next connection.
		if e.Code != protocol.CodeInternal && e.Ref != "" {
			if a.reports.Has(e.Ref) {
				a.reportAnswered(e.Ref, protocol.Ack{}, e.Message)
				return
			}
			a.spool.Remove(e.Ref)
		}
	case protocol.TypeDeviceState:
		a.deviceState(env)
	case protocol.TypeCommand:
		s.command(s.ctx, env)
	case protocol.TypeRenewed:
		var r protocol.Renewed
		if err := protocol.DecodeBody(env, &r); err != nil || r.Ref != s.renewID {
			return
		}
		if err := s.installRenewed(r.Certificate); err != nil {
			a.log.Error("renewed certificate rejected", "err", err)
			return
		}
		a.log.Info("device certificate renewed")
	}
}

// maybeRenew asks for a new certificate once two thirds of the current
// one's lifetime has passed. The key stays the same (it may live in a TPM).
func (s *session) maybeRenew() {
	a := s.a
	cert, err := a.dir.Certificate()
	if err != nil {
		return
	}
	leaf := cert.Leaf
	a.setStatus(func(st *state.Status) { t := leaf.NotAfter.UTC(); st.CertExpires = &t })
	renewAt := leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore) * 2 / 3)
	if time.Now().Before(renewAt) {
		return
	}
	signer, err := a.dir.KeyStore().Signer()
	if err != nil {
		return
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: a.cfg.DeviceID}}, signer)
	if err != nil {
		return
	}
	s.renewID = uuid.NewString()
	if err := s.write(protocol.TypeRenew, s.renewID, protocol.Renew{CSR: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))}); err != nil {
		a.log.Warn("renew request not sent", "err", err)
	}
}

func (s *session) installRenewed(chainPEM string) error {
	a := s.a
	chain, err := identity.ParseChain([]byte(chainPEM))
	if err != nil {
		return err
	}
	signer, err := a.dir.KeyStore().Signer()
	if err != nil {
		return err
	}
	roots, err := a.dir.Roots()
	if err != nil {
		return err
	}
	if err := identity.VerifyDeviceChain(chain, roots, signer.Public(), a.cfg.DeviceID); err != nil {
		return err
	}
	if err := a.dir.SaveCertificate(chainPEM); err != nil {
		return err
	}
	t := chain[0].NotAfter.UTC()
	a.setStatus(func(st *state.Status) { st.CertExpires = &t })
	return nil
}

func (a *Agent) sent(id string) {
	if a.obs.Sent != nil {
		a.obs.Sent(id)
	}
}

func (a *Agent) setStatus(f func(*state.Status)) {
	a.statusMu.Lock()
	defer a.statusMu.Unlock()
	before := a.status.Connection
	f(&a.status)
	if a.status.Connection != before {
		a.status.Since = time.Now().UTC()
	}
	if err := a.dir.SaveStatus(a.status); err != nil {
		a.log.Warn("status not saved", "err", err)
	}
	close(a.reportsChanged)
	a.reportsChanged = make(chan struct{})
}
