// Package server assembles Cordon's server from its parts: store, CA,
// audit log, enrollment, gateway and API. Like smallstep's authority it is
// a library configured by options; cmd/cordon-server only parses flags.
//
// It only wires: options.go holds the settings, tls.go the listeners'
// TLS and certificate, services.go builds the services in dependency
// order, sweeps.go runs the background work, and adapters.go fits the
// services to what their callers declare. The rules live in the
// services.
package server

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cordon-mdm/cordon/internal/atomicfile"
	"github.com/cordon-mdm/cordon/internal/filelock"
	"github.com/cordon-mdm/cordon/internal/fips"
	"github.com/cordon-mdm/cordon/internal/httpmetrics"
	"github.com/cordon-mdm/cordon/internal/version"
	"github.com/cordon-mdm/cordon/pki"
	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/server/applemdm"
	"github.com/cordon-mdm/cordon/server/applescep"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/commands"
	"github.com/cordon-mdm/cordon/server/compliance"
	"github.com/cordon-mdm/cordon/server/console"
	"github.com/cordon-mdm/cordon/server/devices"
	"github.com/cordon-mdm/cordon/server/fanout"
	"github.com/cordon-mdm/cordon/server/gateway"
	"github.com/cordon-mdm/cordon/server/incidents"
	"github.com/cordon-mdm/cordon/server/notify"
	"github.com/cordon-mdm/cordon/server/ratelimit"
	"github.com/cordon-mdm/cordon/server/releases"
	"github.com/cordon-mdm/cordon/server/review"
	"github.com/cordon-mdm/cordon/server/store"
)

// Server is a running Cordon server.
type Server struct {
	cfg   config
	log   *slog.Logger
	Store *store.Store
	CA    *pki.CA
	Audit *audit.Log
	// AuditAnchor signs the audit chain's checkpoints and prunes it.
	AuditAnchor *audit.Anchor
	// Devices revokes devices, set by Start.
	Devices *devices.Service
	// Commands is the remote-command queue, set by Start.
	Commands *commands.Service
	// Incidents runs loss-of-control incidents, set by Start.
	Incidents *incidents.Service
	// Compliance evaluates posture and answers access, set by Start.
	Compliance *compliance.Service
	// Notify sends incident notifications from the outbox, set by Start.
	Notify *notify.Service
	// Releases keeps agent builds and runs their rollouts, set by Start.
	Releases *releases.Service
	// Review produces and records the audit reviews (AU-6), set by Start.
	Review *review.Service
	// SCEP issues Apple identity certificates and mints their one-time
	// challenges (issue 17), set by Start.
	SCEP *applescep.Service
	// AppleMDM manages iPhones, iPads and Macs over Apple's MDM protocol,
	// set by Start unless WithAppleMDM(false).
	AppleMDM *applemdm.MDM
	cmdKey   ed25519.PrivateKey

	// enrollGuesses and keyGuesses limit failed enrollment tokens and API
	// keys per source address.
	enrollGuesses, keyGuesses *ratelimit.Limiter
	// requests times the API's and the console's requests.
	requests *httpmetrics.Metrics

	// hub holds the live agent connections; the gateway fills it.
	hub        *gateway.Hub
	gw         *gateway.Gateway
	console    *console.Console
	stopSweep  context.CancelFunc
	certs      *certSource
	consoleLn  net.Listener
	agentLn    net.Listener
	consoleSrv *http.Server
	agentSrv   *http.Server
	wg         sync.WaitGroup
	lastPrune  time.Time
	// serveLock is held while serving a data dir on SQLite (datadir.go).
	serveLock *filelock.Lock
	// bus joins the processes serving one PostgreSQL (nil on SQLite);
	// leases lets each timed job run in one of them at a time.
	bus *fanout.Bus
	// lastLive are the processes the last reapOnline found up (the
	// sweep's goroutine's).
	lastLive []string
	relay    *busRelay
	leases   leaser
}

// New opens the data dir, database and CA. It does not listen yet.
func New(ctx context.Context, opts ...Option) (*Server, error) {
	cfg := defaults()
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	// Checked before anything touches the data dir, so a refused start
	// leaves no trace.
	if cfg.fips {
		if err := fips.Current().Check(); err != nil {
			return nil, err
		}
	}
	if err := ensureDataDir(cfg.dataDir); err != nil {
		return nil, err
	}
	if cfg.database != "" {
		// The admin commands find the database through the data dir.
		if err := atomicfile.Write(filepath.Join(cfg.dataDir, databaseFile), []byte(cfg.database+"\n"), 0o600); err != nil {
			return nil, err
		}
	} else if u, err := readDatabaseURL(cfg.dataDir); err == nil {
		cfg.database = u
	}
	st, err := store.Open(ctx, cfg.dataDir, cfg.database, store.WithHistoryLimit(cfg.historyLimit))
	if err != nil {
		return nil, err
	}
	serveLock, caOpts, err := dataDirShare(ctx, cfg, st)
	if err != nil {
		st.Close()
		return nil, err
	}
	ca, err := pki.Open(cfg.dataDir, caOpts...)
	if err != nil {
		unlock(serveLock)
		st.Close()
		return nil, err
	}
	key, err := loadOrCreateCommandKey(cfg.dataDir)
	if err != nil {
		ca.Close()
		unlock(serveLock)
		st.Close()
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.log, Store: st, CA: ca, Audit: audit.New(st, cfg.log), cmdKey: key, hub: gateway.NewHub(),
		serveLock: serveLock, leases: oneProcess{}}
	var aopts []audit.AnchorOption
	if cfg.auditClock != nil {
		s.Audit.SetClock(cfg.auditClock)
		aopts = append(aopts, audit.WithAnchorClock(cfg.auditClock))
	}
	if s.AuditAnchor, err = audit.NewAnchor(s.Audit, st, cfg.dataDir, true, aopts...); err != nil {
		s.closeStores()
		return nil, err
	}
	// Connections do not survive a restart; nothing is online until it
	// reconnects. On PostgreSQL other processes may hold devices: Start
	// resets only as the first process up (joinProcesses).
	if st.Dialect() != "postgres" {
		if err := st.ResetOnline(ctx); err != nil {
			s.closeStores()
			return nil, err
		}
	}
	return s, nil
}

// Start binds both listeners, builds the services on them and serves in
// the background. When a step fails, what Start opened is closed again
// (listeners, the gateway and its goroutines) and the error returned;
// Shutdown then only closes the stores.
func (s *Server) Start(ctx context.Context) (err error) {
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()
	if s.consoleLn, err = net.Listen("tcp", s.cfg.listen); err != nil {
		return fmt.Errorf("console listener: %w", err)
	}
	undo = append(undo, func() { s.consoleLn.Close() })
	if s.agentLn, err = net.Listen("tcp", s.cfg.agentListen); err != nil {
		return fmt.Errorf("agent listener: %w", err)
	}
	undo = append(undo, func() { s.agentLn.Close() })
	s.certs = &certSource{ca: s.CA, hosts: s.certHosts(), lifetime: serverCertLifetime}
	if _, err := s.certs.get(ctx); err != nil {
		return err
	}
	if err := s.joinProcesses(ctx); err != nil {
		return err
	}
	root, err := s.buildServices(ctx)
	if err != nil {
		return err
	}
	undo = append(undo, func() { s.gw.Close() })
	s.sweep(ctx)
	// Recorded so an auditor can show from the trail alone that the
	// server ran in FIPS mode, on which module, for every period it ran.
	st := fips.Current()
	if err := s.Audit.Record(ctx, audit.Entry{Actor: "server", Source: "local", Action: audit.ServerStarted,
		Target: "server", Outcome: audit.Success, Details: map[string]string{
			"version": version.Version, "fips_mode": strconv.FormatBool(s.cfg.fips),
			"fips140": strconv.FormatBool(st.Enabled), "fips140_module": st.Module, "fips140_build": st.Build,
			"fips140_enforced": strconv.FormatBool(st.Enforced)}}); err != nil {
		return err
	}
	s.serve(root)
	s.log.Info("cordon server started", "console", "https://"+s.consoleLn.Addr().String(), "gateway", s.GatewayURL(),
		"database", s.Store.Dialect(), "ca_fingerprint", s.CA.RootFingerprint(), "fips_mode", s.cfg.fips, "fips140", fipsState())
	return nil
}

// serve starts both HTTP servers and the background loops; nothing after
// it can fail.
func (s *Server) serve(root http.Handler) {
	consoleTLS, agentBase := tlsConfigs(s.cfg.fips, s.CA, s.certs)
	errLog := slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)
	s.consoleSrv = &http.Server{Handler: root, TLSConfig: consoleTLS, ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second, ErrorLog: errLog}
	s.agentSrv = &http.Server{Handler: s.gw, ReadHeaderTimeout: 10 * time.Second, ErrorLog: errLog}
	sweepCtx, stopSweep := context.WithCancel(context.Background())
	s.stopSweep = stopSweep
	agentTLS := s.gw.TLSConfig(agentBase)
	s.sessionTickets(sweepCtx, agentTLS)
	agentLn := s.gw.Listener(s.agentLn, agentTLS)
	s.auditUpkeep(sweepCtx, true)
	s.wg.Add(4)
	go s.every(sweepCtx, s.cfg.checkpointEvery, func(ctx context.Context) { s.auditUpkeep(ctx, false) })
	go s.every(sweepCtx, s.cfg.sweepEvery, s.sweep)
	if s.bus != nil {
		s.wg.Add(1)
		go s.listenProcesses(sweepCtx)
	}
	go func() {
		defer s.wg.Done()
		if err := s.consoleSrv.Serve(tls.NewListener(s.consoleLn, consoleTLS)); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("console listener stopped", "err", err)
		}
	}()
	go func() {
		defer s.wg.Done()
		if err := s.agentSrv.Serve(agentLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("agent listener stopped", "err", err)
		}
	}()
}

// Run starts the server and serves until ctx is done.
func (s *Server) Run(ctx context.Context) error {
	if err := s.Start(ctx); err != nil {
		s.closeStores()
		return err
	}
	<-ctx.Done()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return s.Shutdown(shutdownCtx)
}

// SendToDevice writes a frame to the device's live connection, if it has
// one here. The command queue delivers through it; tests use it to put
// hand-built frames in front of a real agent.
func (s *Server) SendToDevice(deviceID string, frame []byte) bool { return s.hub.Send(deviceID, frame) }

// Shutdown stops listening, closes agent connections (marking devices
// offline) and closes the stores.
func (s *Server) Shutdown(ctx context.Context) error {
	var errs []error
	if s.consoleSrv != nil {
		errs = append(errs, s.consoleSrv.Shutdown(ctx))
		s.agentSrv.Close() // hijacked websockets are the gateway's to close
		s.stopSweep()
		n := s.gw.Close()
		s.wg.Wait()
		s.recordGuesses(ctx, true)
		errs = append(errs, s.leaveProcesses(ctx), s.Audit.Record(ctx, audit.Entry{Actor: "server", Source: "local",
			Action: audit.GatewayStopped, Target: "gateway", Outcome: audit.Success,
			Details: map[string]string{"connections_closed": strconv.Itoa(n)}}))
		// The last checkpoint covers the server's own stop.
		if _, err := s.AuditAnchor.Checkpoint(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, s.closeStores())
	s.log.Info("cordon server stopped")
	return errors.Join(errs...)
}

func (s *Server) closeStores() error {
	var mdm error
	if s.AppleMDM != nil {
		mdm = s.AppleMDM.Close()
	}
	if s.bus != nil {
		s.bus.Close()
	}
	err := errors.Join(mdm, s.CA.Close(), s.Store.Close())
	unlock(s.serveLock)
	return err
}

// ConsoleRoutes are the web console's registered routes (set by Start),
// for tests that walk every form.
func (s *Server) ConsoleRoutes() []console.Route { return s.console.Routes() }

// DataDir is the server's data dir.
func (s *Server) DataDir() string { return s.cfg.dataDir }

// ConsoleURL is https://host:port of the console listener.
func (s *Server) ConsoleURL() string { return "https://" + s.consoleLn.Addr().String() }

// AgentAddr is the bound agent listener address.
func (s *Server) AgentAddr() string { return s.agentLn.Addr().String() }

// Hub is the registry of live agent connections (for tests and later
// features): which devices are connected, and how many.
func (s *Server) Hub() *gateway.Hub { return s.hub }

// GatewayURL is the wss:// URL enrolled agents dial.
func (s *Server) GatewayURL() string {
	_, port, _ := net.SplitHostPort(s.agentLn.Addr().String())
	return "wss://" + net.JoinHostPort(s.publicHost(s.cfg.agentListen), port) + protocol.GatewayPath
}

const databaseFile = "database.url"

func readDatabaseURL(dataDir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, databaseFile))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

func ensureDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	return os.Chmod(dir, 0o700)
}

// fipsState is the one-line module status for the start-up log.
func fipsState() string { return strings.Join(fips.Current().Lines(), "; ") }
