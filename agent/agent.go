// Package agent is the Cordon agent's runtime: it keeps one mutual-TLS
// websocket to the gateway, sends posture at connect, on change and on a
// slow interval, and never drops a report the server has not acknowledged.
package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cordon-mdm/cordon/agent/actions"
	"github.com/cordon-mdm/cordon/agent/posture"
	"github.com/cordon-mdm/cordon/agent/selfupdate"
	"github.com/cordon-mdm/cordon/agent/spool"
	"github.com/cordon-mdm/cordon/agent/state"
	"github.com/cordon-mdm/cordon/internal/fips"
	"github.com/cordon-mdm/cordon/protocol"
)

// Observer receives events; tests use it to prove delivery guarantees.
type Observer struct {
	Sent  func(reportID string) // a report frame was written to the socket
	Acked func(reportID string) // the server acknowledged it
	// Connected: the server acknowledged the hello of a new session.
	Connected func(tlsResumed bool)
	// Ended: a connection attempt or session ended (established says
	// which) and the agent waits before the next one.
	Ended func(established bool, err error)
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
	localAddr net.IP // source address of gateway connections; nil lets the system choose
	exec      actions.Executor
	seen      *seenLog
	announce  announcement
	// sessions is the TLS session cache, kept for the agent's life (for
	// the life of its certificate, sessionCert: dial.go). Run's goroutine
	// only.
	sessions    tls.ClientSessionCache
	sessionCert []byte
	// spread is the server's last reconnect hint in milliseconds, -1
	// before any (backoff.go).
	spread atomic.Int64

	// A wipe in progress: its answer's id and a channel closed when the
	// server acknowledges it.
	wipeMu       sync.Mutex
	wipeRef      string
	wipeAcked    chan struct{}
	wipePowerOff bool // step 4 of the plan, taken once the identity is gone
	wiped        atomic.Bool
	stopRun      context.CancelFunc
	// updater replaces the binary for update commands (WithSelfUpdate);
	// restarting is set once a new build is in place.
	updater    *updater
	restarting atomic.Bool

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
// doubles per failed attempt up to max. The first retry after losing an
// established session is instead spread over the server's reconnect hint,
// bounded below by base and above by max.
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

// WithLocalAddr makes gateway connections leave from ip: the load
// simulator spreads its agents over 127.0.0.0/8 so that one process can
// hold more connections than one source address has ports.
func WithLocalAddr(ip net.IP) Option { return func(a *Agent) { a.localAddr = ip } }

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
		reportKick: make(chan struct{}, 1), reportsChanged: make(chan struct{}),
		announce: announcement{version: protocol.CurrentCapabilityVersion, caps: protocol.AgentCapabilities}}
	a.spread.Store(-1)
	for _, o := range opts {
		o(a)
	}
	if a.updater == nil {
		a.announce.caps = slices.DeleteFunc(slices.Clone(a.announce.caps), func(c string) bool { return c == protocol.CapUpdates })
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
	// A --keystore contradicting the enrollment stops the agent here,
	// not at its first handshake.
	if _, err := dir.KeyStore(); err != nil {
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
	if a.updater != nil {
		// The new build, started under a service manager, tells the
		// watchdog which process to end if it never connects.
		if err := selfupdate.Started(ctx, a.dir.Path, a.version); err != nil {
			a.log.Warn("update marker", "err", err)
		}
	}
	err := a.run(ctx)
	if a.restarting.Load() {
		a.setStatus(func(s *state.Status) { s.Connection = "restarting"; s.LastError = "" })
		return ErrRestart
	}
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
		var delay time.Duration
		if established {
			attempt = 0
			delay = a.firstRetry()
		} else {
			delay = a.retryDelay(attempt, err)
		}
		attempt++
		a.log.Warn("gateway connection ended; reconnecting", "err", err, "retry_in", delay.Round(time.Millisecond))
		if a.obs.Ended != nil {
			a.obs.Ended(established, err)
		}
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
