// Package applemdm embeds nanomdm: Apple's MDM check-in and command
// protocol, served on the console listener under /mdm, with device
// identities verified against Cordon's CA. A device that authenticates
// joins Cordon's device list (platform ios, ipados or macos) with an
// audit entry in the same transaction.
//
// nanomdm keeps its own state (enrollments, push tokens, command queue,
// push certificates, certificate associations) in its PostgreSQL storage
// when Cordon runs on PostgreSQL (WithPostgres), and in its file store
// under the data dir on SQLite, where a backup must include that
// directory with the database.
package applemdm

import (
	"context"
	"crypto/x509"
	"database/sql"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/micromdm/nanomdm/certverify"
	httpmdm "github.com/micromdm/nanomdm/http/mdm"
	"github.com/micromdm/nanomdm/push"
	"github.com/micromdm/nanomdm/push/nanopush"
	pushsvc "github.com/micromdm/nanomdm/push/service"
	"github.com/micromdm/nanomdm/service"
	"github.com/micromdm/nanomdm/service/certauth"
	"github.com/micromdm/nanomdm/service/nanomdm"
	"github.com/micromdm/nanomdm/storage"
	"github.com/micromdm/nanomdm/storage/diskv"
	"github.com/micromdm/nanomdm/storage/pgsql"

	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/store"
)

// CA is what the embedding needs of Cordon's CA: the chain device
// identities must verify to, and whether one was revoked since.
type CA interface {
	Root() *x509.Certificate
	Intermediate() *x509.Certificate
	IsRevoked(serial string) (bool, error)
}

// Devices writes a checked-in device and its audit entry in one
// transaction, and finds the UDID a device id is enrolled as
// (*store.Store).
type Devices interface {
	InTx(ctx context.Context, fn func(tx *store.Store) error) error
	GetAppleEnrollment(ctx context.Context, deviceID string) (*store.AppleEnrollment, error)
}

// Auditor records inside that transaction (*audit.Log).
type Auditor interface {
	RecordTx(ctx context.Context, tx audit.Appender, e audit.Entry) error
}

// Option configures New.
type Option func(*config)

type config struct {
	log       *slog.Logger
	fips      bool
	apnsURL   string
	apnsRoots *x509.CertPool
	posture   Posture
	evaluator Evaluator
	revoker   Revoker
	db        *sql.DB
	now       func() time.Time
	queries   *queries
}

// WithPostgres keeps nanomdm's state in db, a pool on Cordon's
// PostgreSQL database whose search path is the schema migration 00006
// made for it (store.SchemaDB), instead of its file store: one database
// to back up, and one to fail over.
func WithPostgres(db *sql.DB) Option { return func(c *config) { c.db = db } }

// WithLogger sets the logger nanomdm's parts log through.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// WithFIPS refuses, before verifying them, messages whose signature
// digest is outside FIPS 140's approved set (SHA-1), as the server's
// FIPS mode must.
func WithFIPS(on bool) Option { return func(c *config) { c.fips = on } }

// WithAPNs sends pushes to url instead of Apple's production APNs,
// trusting roots for its TLS certificate: a recording endpoint in tests,
// Apple's development gateway for a development push certificate.
func WithAPNs(url string, roots *x509.CertPool) Option {
	return func(c *config) { c.apnsURL, c.apnsRoots = url, roots }
}

// MDM is the embedded Apple MDM server: the /mdm handler, the command
// queue of the devices it manages, and APNs to wake them.
type MDM struct {
	handler http.Handler
	queue   storage.CommandEnqueuer
	push    push.Pusher
	devices Devices
	log     *slog.Logger
	db      *sql.DB // WithPostgres's, closed by Close
	answers map[string]AnswerFunc
	// connected runs on a device's Idle request (OnConnect).
	connected func(ctx context.Context, deviceID string)
	// posture and evaluator take answers as posture (WithPosture).
	posture   Posture
	evaluator Evaluator
	// certs is the APNs push certificate nanopush presents.
	certs *PushCerts
	// queries sends the posture queries (WithQueries).
	queries *queries
}

// New returns the embedded MDM server. Without WithPostgres nanomdm's
// state lives in dir, created 0700: it holds push tokens, unlock tokens
// and the APNs key.
func New(devices Devices, aud Auditor, ca CA, dir string, opts ...Option) (*MDM, error) {
	cfg := config{log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(&cfg)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("apple mdm store: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("apple mdm store: %w", err)
	}
	pool, err := certverify.NewPoolVerifier(pemOf(ca.Root()), pemOf(ca.Intermediate()), x509.ExtKeyUsageClientAuth)
	if err != nil {
		return nil, fmt.Errorf("apple mdm verifier: %w", err)
	}
	log := nanoLogger{cfg.log.With("component", "applemdm")}
	var st storage.AllStorage = diskv.New(dir)
	// The push service reads certificates through freshPushCerts on the
	// file store, which another process (the host command) writes.
	var pushCerts storage.PushCertStore = freshPushCerts(dir)
	if cfg.db != nil {
		if st, err = pgsql.New(pgsql.WithDB(cfg.db), pgsql.WithLogger(log.With("storage", "pgsql"))); err != nil {
			return nil, fmt.Errorf("apple mdm store: %w", err)
		}
		pushCerts = st
	}
	certs, err := NewPushCerts(dir, cfg.db, devices, aud, cfg.now)
	if err != nil {
		return nil, err
	}
	m := &MDM{queue: st, db: cfg.db, devices: devices, log: cfg.log, answers: map[string]AnswerFunc{}, posture: cfg.posture, evaluator: cfg.evaluator,
		certs: certs,
		push:  pushsvc.New(st, pushCerts, nanopush.NewFactory(nanopush.WithNewClient(apnsClient(cfg))), log.With("service", "push"))}
	m.handleApps()
	nano := nanomdm.New(st, nanomdm.WithLogger(log.With("service", "nanomdm")))
	// certauth sits outside the recorder, so that only a check-in whose
	// certificate belongs to its enrollment reaches Cordon's device list.
	rec := &recorder{CheckinAndCommandService: nano, devices: devices, audit: aud, log: cfg.log, mdm: m, revoker: cfg.revoker}
	var svc service.CheckinAndCommandService = certauth.New(rec, st, certauth.WithLogger(log.With("service", "certauth")))
	// The claim guard sits in front of certauth, so that an identity that
	// cannot be the UDID it claims links nothing in nanomdm.
	svc = claimGuard{CheckinAndCommandService: svc, r: rec}
	var h http.Handler = httpmdm.CheckinAndCommandHandler(svc, log.With("handler", "checkin-command"))
	h = httpmdm.CertVerifyMiddleware(h, verifier{pool, ca}, log.With("handler", "cert-verify"))
	// The console listener asks for no client certificate: a device
	// proves its identity by signing each message (SignMessage in the
	// enrollment profile's MDM payload).
	h = httpmdm.CertExtractMdmSignatureMiddleware(h, httpmdm.MdmSignatureVerifierFunc(signatureVerifier(cfg.fips)),
		httpmdm.SigLogWithLogger(log.With("handler", "cert-extract")))
	m.handler = withRemote(h)
	if m.queries = cfg.queries; m.queries != nil {
		m.handlePosture()
	}
	return m, nil
}

// Close releases the PostgreSQL pool given with WithPostgres.
func (m *MDM) Close() error {
	if m.db == nil {
		return nil
	}
	return m.db.Close()
}

// ServeHTTP serves /mdm.
func (m *MDM) ServeHTTP(w http.ResponseWriter, r *http.Request) { m.handler.ServeHTTP(w, r) }

func pemOf(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// errRevoked refuses a certificate Cordon revoked: the pool checks the
// chain only, and a revoked device must not keep talking MDM.
var errRevoked = errors.New("device certificate revoked")

// verifier is nanomdm's chain check plus Cordon's revocation list.
type verifier struct {
	pool *certverify.PoolVerifier
	ca   CA
}

func (v verifier) Verify(ctx context.Context, cert *x509.Certificate) error {
	if err := v.pool.Verify(ctx, cert); err != nil {
		return err
	}
	revoked, err := v.ca.IsRevoked(cert.SerialNumber.String())
	if err != nil {
		return fmt.Errorf("revocation check: %w", err)
	}
	if revoked {
		return errRevoked
	}
	return nil
}
