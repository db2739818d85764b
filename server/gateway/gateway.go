// Package gateway is the agents' mutual-TLS websocket hub. A device's
// identity is its client certificate and nothing else; each device has at
// most one live connection; every frame it sends is decoded by protocol
// and acknowledged only after the store committed it.
package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/cordon-mdm/cordon/internal/httpjson"
	"github.com/cordon-mdm/cordon/internal/wshandshake"
	"github.com/cordon-mdm/cordon/pki/identity"
	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/store"
)

// Store is what the gateway reads and keeps. The handshake's reads are
// answered from memory (store.Store.HandshakeCertificate), so that a
// reconnect storm does not queue on the database.
type Store interface {
	Tx
	HandshakeDevice(ctx context.Context, id string) (*store.DeviceIdentity, error)
	HandshakeCertificate(ctx context.Context, serial string) (*store.Certificate, error)
	// GetDevice reads the database, not the handshake's memory: another
	// process's word that a device is revoked is checked against it.
	GetDevice(ctx context.Context, id string) (*store.Device, error)
	AddCertificate(ctx context.Context, c *store.Certificate) error
}

// Tx is what one commit of a connection writes: the connect, the
// disconnect, the hello's facts, a report, with their audit entries.
type Tx interface {
	// server is the process's origin (WithServerID): a disconnect
	// changes the device only while its flag is this process's.
	MarkConnected(ctx context.Context, id, addr string, at time.Time, server string) error
	MarkDisconnected(ctx context.Context, id string, at time.Time, server string) error
	UpdateHello(ctx context.Context, id string, f store.HelloFacts) error
	SavePosture(ctx context.Context, r *store.PostureReport, lock *store.LockEvent) (bool, error)
	audit.Appender
}

// Committer commits a connection's writes as one unit, and returns once
// they are durable: what the gateway acknowledges has been committed.
type Committer interface {
	Commit(ctx context.Context, fn func(tx Tx) error) error
}

// direct commits on the Store itself, one call at a time (tests, and a
// gateway given no writer).
type direct struct{ st Store }

func (d direct) Commit(_ context.Context, fn func(tx Tx) error) error { return fn(d.st) }

// batched commits through a store.Writer: the writes of many connections
// in one transaction (group commit).
type batched struct{ w *store.Writer }

func (b batched) Commit(ctx context.Context, fn func(tx Tx) error) error {
	return b.w.Commit(ctx, func(tx *store.Store) error { return fn(tx) })
}

// Signer renews device certificates.
type Signer interface {
	SignDevice(ctx context.Context, csr *x509.CertificateRequest, deviceID string) ([]*x509.Certificate, error)
}

// Auditor records security events, on their own or in the transaction
// of the change they record.
type Auditor interface {
	Record(ctx context.Context, e audit.Entry) error
	RecordTx(ctx context.Context, tx audit.Appender, e audit.Entry) error
}

// Commands is the remote-command queue as the gateway sees it: told when
// a device is ready for its pending commands, and handed each result.
type Commands interface {
	// Ready is called once the device's hello is acknowledged.
	Ready(ctx context.Context, deviceID string)
	// Result stores an agent's answer; the gateway acks it, then runs
	// after (when not nil): a wipe's revocation must not cut the
	// connection before the agent hears that its answer is stored.
	Result(ctx context.Context, deviceID, remote string, r protocol.CommandResult) (after func(), err error)
}

// Incidents takes incident reports from agents and says where a device
// stands (compliance, its owner's devices).
type Incidents interface {
	// Report opens an incident for the report in frame frameID and
	// returns its id; a report sent again returns the same id.
	// clockAhead is how far at least the device's clock runs ahead of
	// the server's (see clockAhead), zero when it is within the skew.
	Report(ctx context.Context, deviceID, remote, frameID string, r protocol.IncidentReport, clockAhead time.Duration) (string, error)
	State(ctx context.Context, deviceID string) (protocol.DeviceState, error)
}

// Compliance evaluates each stored report and answers a device's own
// access question.
type Compliance interface {
	Evaluate(ctx context.Context, deviceID string, p protocol.Posture) error
	AccessJSON(ctx context.Context, deviceID string) (any, error)
	// AgentRequest files a Bluetooth approval request from frame frameID
	// and returns its id; the same frame again returns the same id.
	AgentRequest(ctx context.Context, deviceID, remote, frameID string, r protocol.BluetoothRequest) (string, error)
}

// Releases serves agent builds to enrolled devices: GET
// protocol.ReleasePathPrefix + sha256 on the agent listener
// (*releases.Service).
type Releases interface {
	ServeRelease(w http.ResponseWriter, r *http.Request, deviceID, remote string)
}

// ErrRefused marks an incident report the server will never accept (not
// the reporter's device, say), as opposed to one it failed to store.
var ErrRefused = errors.New("refused")

// Gateway serves the agent listener.
type Gateway struct {
	store      Store
	signer     Signer
	audit      Auditor
	commands   Commands
	incidents  Incidents
	compliance Compliance
	releases   Releases
	log        *slog.Logger
	hub        *hub
	commit     Committer
	writer     *store.Writer // closed with the gateway
	serverID   string        // WithServerID
	metrics    *metrics      // metrics.go

	pingInterval     time.Duration
	pongWait         time.Duration
	writeTimeout     time.Duration
	handshakeTimeout time.Duration
	frameTimeout     time.Duration

	upgrader websocket.Upgrader
	admit    admission // handshake and upgrade bounds, reconnect hint (admission.go)
	closing  atomic.Bool
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

// Option configures a Gateway.
type Option func(*Gateway)

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(g *Gateway) { g.log = l } }

// WithWriter commits the connections' writes through w, many in one
// transaction (group commit). The gateway closes w in Close, once every
// connection has ended.
func WithWriter(w *store.Writer) Option {
	return func(g *Gateway) { g.commit, g.writer = batched{w}, w }
}

// WithServerID names the process in the devices it marks online (the
// bus's origin, with several processes on one PostgreSQL; default ”):
// a connection that ends here after its device reconnected to another
// process leaves the device online, and the other processes can tell
// which devices to mark offline when this one dies.
func WithServerID(id string) Option { return func(g *Gateway) { g.serverID = id } }

// WithCommands connects the remote-command queue.
func WithCommands(c Commands) Option { return func(g *Gateway) { g.commands = c } }

// WithIncidents accepts incident reports and sends device state.
func WithIncidents(i Incidents) Option { return func(g *Gateway) { g.incidents = i } }

// WithCompliance evaluates reports and serves GET /api/v1/access.
func WithCompliance(c Compliance) Option { return func(g *Gateway) { g.compliance = c } }

// WithReleases serves agent builds to enrolled devices for their
// update commands.
func WithReleases(r Releases) Option { return func(g *Gateway) { g.releases = r } }

// WithPingInterval sets how often the server pings each agent; an agent
// silent for 2.5 intervals is dropped.
func WithPingInterval(d time.Duration) Option {
	return func(g *Gateway) { g.pingInterval, g.pongWait = d, d*5/2 }
}

// WithFrameTimeout bounds the handling of one agent frame, all of its
// store and service calls together (default 10 s). A frame that runs out
// of time gets an internal error, not an ack: the agent sends it again.
func WithFrameTimeout(d time.Duration) Option { return func(g *Gateway) { g.frameTimeout = d } }

// New returns a Gateway. Call Close to stop it.
func New(st Store, signer Signer, auditor Auditor, opts ...Option) *Gateway {
	g := &Gateway{store: st, signer: signer, audit: auditor, log: slog.New(slog.DiscardHandler), hub: newHub(), metrics: newMetrics(),
		pingInterval: 30 * time.Second, pongWait: 75 * time.Second,
		writeTimeout: 10 * time.Second, handshakeTimeout: 10 * time.Second, frameTimeout: 10 * time.Second}
	for _, o := range opts {
		o(g)
	}
	if g.commit == nil {
		g.commit = direct{st}
	}
	// A small read buffer and a shared write-buffer pool keep an idle
	// connection near 17 KiB; agents are not browsers, so no Origin check.
	g.upgrader = websocket.Upgrader{
		ReadBufferSize:  512,
		WriteBufferSize: 4096,
		WriteBufferPool: &sync.Pool{},
		CheckOrigin:     func(*http.Request) bool { return true },
	}
	g.ctx, g.cancel = context.WithCancel(context.Background())
	g.wg.Add(1)
	go g.keepalive()
	return g
}

// TLSConfig returns base extended with the revocation check. base must
// already require and verify client certificates against the device CA.
func (g *Gateway) TLSConfig(base *tls.Config) *tls.Config {
	cfg := base.Clone()
	cfg.ClientAuth = tls.RequireAndVerifyClientCert
	cfg.NextProtos = []string{"http/1.1"}
	cfg.VerifyConnection = g.verifyConnection
	return cfg
}

// Listener wraps a TCP listener so that handshakes complete, and refused
// ones are audited, before net/http sees the connection.
func (g *Gateway) Listener(inner net.Listener, cfg *tls.Config) net.Listener {
	return g.listen(inner, cfg)
}

// ServeHTTP upgrades an authenticated agent to the websocket channel and
// returns at once, so net/http's per-request buffers are released while
// the connection lives on in its read goroutine.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == AccessPath && g.compliance != nil {
		g.access(w, r)
		return
	}
	if strings.HasPrefix(r.URL.Path, protocol.ReleasePathPrefix) && g.releases != nil {
		g.release(w, r)
		return
	}
	if r.URL.Path != protocol.GatewayPath {
		http.NotFound(w, r)
		return
	}
	id, ok := deviceOf(w, r)
	if !ok {
		return
	}
	release, ok := g.admitUpgrade(w)
	if !ok {
		return
	}
	defer release()
	host := httpjson.RemoteHost(r)
	dev, err := g.store.HandshakeDevice(r.Context(), id)
	if err != nil || dev.Status == store.StatusRevoked {
		reason := "device is not enrolled"
		if err == nil {
			reason = "device revoked"
		}
		g.audit.Record(r.Context(), audit.Entry{Actor: "device:" + id, Source: host, Action: audit.DeviceRefused,
			Target: "device:" + id, Outcome: audit.Denied, Details: map[string]string{"reason": reason}})
		httpjson.Error(w, http.StatusForbidden, reason)
		return
	}
	ws, err := wshandshake.Upgrade(&g.upgrader, w, r, nil)
	if err != nil {
		return // the upgrader has answered the client
	}
	g.serve(ws, id, host, dev.EnrolledAt, connectDetails(r))
}

// connectDetails are the details of a connection's device.connected
// entry: how it authenticated, and whether from a resumed TLS session
// (a ticket, possibly issued before a restart).
func connectDetails(r *http.Request) map[string]string {
	return map[string]string{"serial": identity.Serial(r.TLS.PeerCertificates[0].SerialNumber),
		"tls_resumed": strconv.FormatBool(r.TLS.DidResume)}
}

// serve runs an upgraded connection: it becomes the device's one
// connection, with its own context (cancelled when it ends), and is read
// on its own goroutine.
func (g *Gateway) serve(ws *websocket.Conn, id, host string, enrolledAt time.Time, details map[string]string) {
	c := newConn(g, ws, id, host, enrolledAt)
	if old := g.hub.register(c); old != nil {
		old.close(protocol.CloseReplaced, "replaced by a newer connection")
	}
	ctx, cancel := c.frameContext()
	defer cancel()
	// The device is online and its entry says so, together or neither.
	at := time.Now().UTC()
	if err := g.commit.Commit(ctx, func(tx Tx) error {
		if err := tx.MarkConnected(ctx, id, host, at, g.serverID); err != nil {
			return err
		}
		return g.audit.RecordTx(ctx, tx, audit.Entry{Actor: "device:" + id, Source: host, Action: audit.DeviceConnected,
			Target: "device:" + id, Outcome: audit.Success, Details: details})
	}); err != nil {
		g.log.Error("mark connected", "device_id", id, "err", err)
	}
	g.log.Info("agent connected", "device_id", id, "remote", host)
	g.wg.Add(1)
	go c.readLoop()
}

// deviceOf is the device id of the verified client certificate, or an
// answer saying why there is none.
func deviceOf(w http.ResponseWriter, r *http.Request) (string, bool) {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
		httpjson.Error(w, http.StatusUnauthorized, "client certificate required")
		return "", false
	}
	id, err := identity.DeviceID(r.TLS.PeerCertificates[0])
	if err != nil {
		httpjson.Error(w, http.StatusForbidden, "not a device certificate")
		return "", false
	}
	return id, true
}

// AccessPath answers, for the device whose certificate is presented, the
// same access decision as the console API: a CJI application behind the
// same CA asks about the device in front of it.
const AccessPath = "/api/v1/access"

func (g *Gateway) access(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		httpjson.Error(w, http.StatusMethodNotAllowed, "GET only")
		return
	}
	id, ok := deviceOf(w, r)
	if !ok {
		return
	}
	d, err := g.compliance.AccessJSON(r.Context(), id)
	if err != nil {
		g.log.Error("access decision", "device_id", id, "err", err)
		httpjson.Error(w, http.StatusInternalServerError, "internal error")
		return
	}
	httpjson.Write(w, http.StatusOK, d)
}

// release serves an agent build to an enrolled device that is not
// revoked: its certificate passed the handshake's checks, and the
// database (not the handshake's memory) says it is active.
func (g *Gateway) release(w http.ResponseWriter, r *http.Request) {
	id, ok := deviceOf(w, r)
	if !ok {
		return
	}
	host := httpjson.RemoteHost(r)
	dev, err := g.store.GetDevice(r.Context(), id)
	if err != nil || dev.Status == store.StatusRevoked {
		reason := "device is not enrolled"
		if err == nil {
			reason = "device revoked"
		}
		g.audit.Record(r.Context(), audit.Entry{Actor: "device:" + id, Source: host, Action: audit.DeviceRefused,
			Target: "device:" + id, Outcome: audit.Denied, Details: map[string]string{"reason": reason, "path": "releases"}})
		httpjson.Error(w, http.StatusForbidden, reason)
		return
	}
	g.releases.ServeRelease(w, r, id, host)
}

// Close closes every connection and waits for their goroutines. It
// returns how many were open. Devices are not marked offline one by one:
// with thousands connected that is thousands of writes on the way down;
// the caller marks them all in one statement.
func (g *Gateway) Close() int {
	g.closing.Store(true)
	conns := g.hub.snapshot()
	for _, c := range conns {
		c.close(websocket.CloseGoingAway, "server shutting down")
	}
	g.cancel()
	g.wg.Wait()
	if g.writer != nil {
		g.writer.Close()
	}
	return len(conns)
}

// keepalive pings every connection from one goroutine rather than one
// ticker per connection, which would cost a goroutine stack each.
func (g *Gateway) keepalive() {
	defer g.wg.Done()
	t := time.NewTicker(g.pingInterval)
	defer t.Stop()
	for {
		select {
		case <-g.ctx.Done():
			return
		case <-t.C:
			deadline := time.Now().Add(g.writeTimeout)
			for _, c := range g.hub.snapshot() {
				if err := c.ws.WriteControl(websocket.PingMessage, nil, deadline); err != nil {
					c.drop() // the read loop notices and cleans up
				}
			}
		}
	}
}

// frameType is the type of a frame the server built, "" when it has none.
func frameType(frame []byte) string {
	var env struct {
		Type string `json:"type"`
	}
	if json.Unmarshal(frame, &env) != nil {
		return ""
	}
	return env.Type
}
