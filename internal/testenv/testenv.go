// Package testenv is Cordon's in-process test environment: a real server
// (real CA, real TLS on loopback, real SQLite or PostgreSQL) and real
// agents, driven like a script. Every integration test uses it.
package testenv

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/cordon-mdm/cordon/agent"
	"github.com/cordon-mdm/cordon/agent/enrollment"
	"github.com/cordon-mdm/cordon/agent/keystore"
	"github.com/cordon-mdm/cordon/agent/posture"
	"github.com/cordon-mdm/cordon/agent/state"
	"github.com/cordon-mdm/cordon/internal/apivalidate"
	"github.com/cordon-mdm/cordon/internal/fips"
	"github.com/cordon-mdm/cordon/internal/needs"
	"github.com/cordon-mdm/cordon/pki/identity"
	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/server"
	"github.com/cordon-mdm/cordon/server/api"
)

// PostgresEnv names the variable holding an admin DSN of a PostgreSQL
// server that tests may create databases in. `make test` sets it.
const PostgresEnv = "CORDON_TEST_POSTGRES"

// Database is one backend an integration test runs against.
type Database struct {
	Name string
	// DSN returns a fresh, empty database for one test ("" = SQLite).
	DSN func(t testing.TB) string
}

// Databases lists SQLite and, when PostgresEnv is set, PostgreSQL. With
// CI=true a missing PostgreSQL fails the test instead of skipping it.
func Databases(t testing.TB) []Database {
	dbs := []Database{{Name: "sqlite", DSN: func(testing.TB) string { return "" }}}
	admin := os.Getenv(PostgresEnv)
	if admin == "" {
		// Not needs.Missing: without PostgreSQL the test still runs on
		// SQLite, outside CI.
		if needs.CI() {
			t.Fatalf("CI=true but %s is not set: PostgreSQL is required (run the tests through `make test`)", PostgresEnv)
		}
		t.Logf("%s not set: PostgreSQL backend skipped (run `make test` to include it)", PostgresEnv)
		return dbs
	}
	return append(dbs, Database{Name: "postgres", DSN: func(t testing.TB) string { return FreshPostgres(t, admin) }})
}

// FreshPostgres creates an empty database on the admin DSN's server and
// drops it when the test ends.
func FreshPostgres(t testing.TB, admin string) string {
	t.Helper()
	db, err := gorm.Open(postgres.Open(admin), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	name := "cordon_" + strings.ReplaceAll(uuid.NewString()[:18], "-", "_")
	if err := db.Exec("CREATE DATABASE " + name).Error; err != nil {
		t.Fatalf("create database: %v", err)
	}
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	t.Cleanup(func() {
		db.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
		if sqlDB, err := db.DB(); err == nil {
			sqlDB.Close()
		}
	})
	return u.String()
}

// Env is a running server with helpers to drive it.
type Env struct {
	T       testing.TB
	Server  *server.Server
	DataDir string
	DSN     string
	Log     *slog.Logger
	ctx     context.Context
	http    *http.Client
	mu      sync.Mutex
	auditor string // API key Audit reads with, made on first use
	// openapi holds every API answer to server/api/openapi.json; loaded
	// on first use.
	openapi *apivalidate.Validator
}

// New starts a server on loopback with a fresh data dir and database dsn.
func New(t testing.TB, dsn string, opts ...server.Option) *Env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	base := []server.Option{server.WithDataDir(dir), server.WithListen("127.0.0.1:0"), server.WithAgentListen("127.0.0.1:0"),
		server.WithDatabase(dsn), server.WithLogger(log), server.WithPingInterval(2 * time.Second)}
	srv, err := server.New(ctx, append(base, opts...)...)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	if err := srv.Start(ctx); err != nil {
		t.Fatalf("server.Start: %v", err)
	}
	e := &Env{T: t, Server: srv, DataDir: dir, DSN: dsn, Log: log, ctx: ctx}
	e.http = e.Client()
	t.Cleanup(func() {
		cancel()
		sctx, c := context.WithTimeout(context.Background(), 10*time.Second)
		defer c()
		srv.Shutdown(sctx)
	})
	return e
}

// testWriter sends server logs to the test log, so they show on failure.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// Client is an HTTPS client that pins this server's root. Every answer
// it gets to an operation of the OpenAPI document is validated against
// it (status, headers, JSON body); one the document does not describe
// fails the test (Validating).
func (e *Env) Client() *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: e.Validating(e.BaseTransport())}
}

// BaseTransport is Client's transport before validation, for a test that
// changes it (its source address) and wraps it again with Validating.
func (e *Env) BaseTransport() *http.Transport {
	fp := e.Server.CA.RootFingerprint()
	cfg := fips.TLS(fips.Default())
	cfg.InsecureSkipVerify = true
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		_, err := identity.VerifyPinnedServer(cs, "127.0.0.1", fp)
		return err
	}
	return &http.Transport{TLSClientConfig: cfg}
}

// Validating wraps base so that each answer to an operation of
// server/api/openapi.json is held to it, failing the test (e.T.Errorf)
// on one the document does not describe.
func (e *Env) Validating(base http.RoundTripper) http.RoundTripper {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.openapi == nil {
		e.openapi = loadOpenAPI(e.T)
	}
	return &apivalidate.Transport{Base: base, Validator: e.openapi, Report: e.T.Errorf}
}

// Validating is Env.Validating for a client of a server a test runs
// outside an Env (a cordon-server process).
func Validating(t testing.TB, base http.RoundTripper) http.RoundTripper {
	return &apivalidate.Transport{Base: base, Validator: loadOpenAPI(t), Report: t.Errorf}
}

func loadOpenAPI(t testing.TB) *apivalidate.Validator {
	v, err := apivalidate.New(api.OpenAPIDocument())
	if err != nil {
		t.Fatalf("the OpenAPI document: %v", err)
	}
	return v
}

// Token creates an enrollment token as local IT would.
func (e *Env) Token(ttl time.Duration, uses int) string {
	e.T.Helper()
	adm, err := server.OpenAdmin(e.ctx, e.DataDir, e.DSN)
	if err != nil {
		e.T.Fatal(err)
	}
	defer adm.Close()
	tok, _, err := adm.CreateToken(e.ctx, ttl, uses, "")
	if err != nil {
		e.T.Fatal(err)
	}
	return tok
}

// APIKey creates an API key with role.
func (e *Env) APIKey(role string) string {
	e.T.Helper()
	adm, err := server.OpenAdmin(e.ctx, e.DataDir, e.DSN)
	if err != nil {
		e.T.Fatal(err)
	}
	defer adm.Close()
	k, err := adm.CreateAPIKey(e.ctx, role+"-"+uuid.NewString()[:8], role)
	if err != nil {
		e.T.Fatal(err)
	}
	return k
}

// Enroll enrolls a fresh state dir with token and returns it.
func (e *Env) Enroll(token string) (state.Dir, error) {
	// A file key, whatever TPM the test machine has: tests that want
	// the TPM use swtpm (internal/swtpm/swtpmtest).
	dir := state.Dir{Path: filepath.Join(e.T.TempDir(), "agent"), Keys: keystore.FileKind}
	_, err := enrollment.Enroll(e.ctx, enrollment.Request{Server: e.Server.ConsoleURL(), Token: token,
		Fingerprint: e.Server.CA.RootFingerprint(), State: dir, Facts: posture.Facts(e.ctx, "test"), FIPS: fips.Default()})
	return dir, err
}

// MustEnroll enrolls with a new one-time token.
func (e *Env) MustEnroll() state.Dir {
	e.T.Helper()
	dir, err := e.Enroll(e.Token(time.Hour, 1))
	if err != nil {
		e.T.Fatalf("enroll: %v", err)
	}
	return dir
}

// Agent is a running agent.
type Agent struct {
	*agent.Agent
	Dir    state.Dir
	cancel context.CancelFunc
	done   chan struct{}
}

// Stop stops the agent and waits for it.
func (a *Agent) Stop() {
	a.cancel()
	<-a.done
}

// OSOnly is the collector StartAgent gives agents unless a test passes its
// own: the real OS identity and nothing else. Most tests are about the
// channel, and the full collector runs apt-get and cryptsetup in every
// agent; TestLinuxPostureEndToEnd runs that one.
type OSOnly struct{}

// Collect implements posture.Collector.
func (OSOnly) Collect(ctx context.Context) (protocol.Posture, error) {
	f := posture.Facts(ctx, "test")
	return protocol.Posture{CollectedAt: time.Now().UTC(), OS: protocol.OSIdentity{Name: f.OSName, Version: f.OSVersion,
		Hostname: f.Hostname, AgentVersion: f.AgentVersion, Platform: f.Platform, Source: "posture.Facts"}}, nil
}

// StartAgent runs an agent for dir until the test ends.
func (e *Env) StartAgent(dir state.Dir, opts ...agent.Option) *Agent {
	e.T.Helper()
	base := []agent.Option{agent.WithLogger(e.Log), agent.WithVersion("test"), agent.WithBackoff(50*time.Millisecond, time.Second),
		agent.WithCollector(OSOnly{})}
	a, err := agent.New(dir, append(base, opts...)...)
	if err != nil {
		e.T.Fatal(err)
	}
	return run(e.T, e.ctx, a, dir)
}

// RunAgent runs an agent a test built itself until the test ends. Stop
// (and the test's end) waits for it to be gone, so its last status write
// cannot race the removal of the test's temporary dirs.
func RunAgent(t testing.TB, a *agent.Agent, dir state.Dir) *Agent {
	return run(t, context.Background(), a, dir)
}

func run(t testing.TB, parent context.Context, a *agent.Agent, dir state.Dir) *Agent {
	ctx, cancel := context.WithCancel(parent)
	ta := &Agent{Agent: a, Dir: dir, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(ta.done)
		a.Run(ctx)
	}()
	t.Cleanup(ta.Stop)
	return ta
}

// Do calls the API with key and decodes the JSON answer into out (when
// non-nil); it returns the status.
func (e *Env) Do(method, path, key string, body, out any) int {
	e.T.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.Server.ConsoleURL()+path, rd)
	if err != nil {
		e.T.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := e.http.Do(req)
	if err != nil {
		e.T.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			e.T.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, raw, err)
		}
	}
	return resp.StatusCode
}

// Eventually polls cond until it holds or timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// AuditEntry is the API's audit entry.
type AuditEntry struct {
	Seq     int64             `json:"seq"`
	Actor   string            `json:"actor"`
	Source  string            `json:"source"`
	Action  string            `json:"action"`
	Target  string            `json:"target"`
	Outcome string            `json:"outcome"`
	Details map[string]string `json:"details"`
}

// Audit returns every audit entry with action (all when empty).
func (e *Env) Audit(action string) []AuditEntry {
	e.T.Helper()
	key := e.auditorKey()
	var out struct {
		Entries []AuditEntry `json:"entries"`
	}
	if st := e.Do("GET", "/api/v1/audit?limit=1000&action="+url.QueryEscape(action), key, nil, &out); st != 200 {
		e.T.Fatalf("audit: %d", st)
	}
	return out.Entries
}

func (e *Env) auditorKey() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.auditor == "" {
		e.auditor = e.APIKey("auditor")
	}
	return e.auditor
}

// CountDevices counts device rows.
func (e *Env) CountDevices() int64 {
	var n int64
	if err := e.Server.Store.DB().Table("devices").Count(&n).Error; err != nil {
		e.T.Fatal(err)
	}
	return n
}
