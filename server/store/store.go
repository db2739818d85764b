// Package store persists Cordon's server state with gorm: pure-Go SQLite
// (WAL) in the data dir by default, PostgreSQL for scale. Each consumer
// declares the narrow interface it needs of *Store, at its own boundary.
package store

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/glebarez/sqlite"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/logger"
)

// Sentinel errors; the API layer maps them to statuses.
var (
	ErrNotFound  = errors.New("not found")
	ErrConflict  = errors.New("conflict")
	ErrTokenUsed = errors.New("enrollment token already used")
	ErrTokenExp  = errors.New("enrollment token expired")
	ErrTokenBad  = errors.New("unknown enrollment token")
	// ErrTokenScope is a token used for what its purpose does not allow
	// (an agent package's token asked for an Apple enrollment profile).
	ErrTokenScope = errors.New("this enrollment token belongs to an agent package: it enrolls Cordon agents only")
)

// Store is the gorm implementation of every consumer's store interface.
type Store struct {
	db      *gorm.DB
	dialect string
	dsn     string // PostgreSQL's, for SchemaDB
	path    string // SQLite's database file
	// historyLimit bounds posture history per device.
	historyLimit int
	// ids is the handshake's memory of certificates and devices (ids.go),
	// shared by the Store and every transaction's copy of it.
	ids *identities
	// fixed, in a Writer's transaction, is the context every statement
	// runs under instead of the caller's (Writer.Commit).
	fixed context.Context
	// changed, in a transaction, collects the identities it changed, to
	// be forgotten once it has ended (InTx).
	changed *[]func()
	// audits, in a Writer's batch, holds the audit entries of the batch's
	// writes until its end, where they are chained in one append
	// (appendAudits): the chain's head row is then locked only for the
	// last statements and the commit, not for the whole batch.
	audits *[]pendingAudit
}

// Option configures a Store.
type Option func(*Store)

// WithHistoryLimit keeps at most n posture reports per device (default 500).
func WithHistoryLimit(n int) Option { return func(s *Store) { s.historyLimit = n } }

// Open connects to dsn: "" or a file path means SQLite in dataDir,
// "postgres://..." means PostgreSQL. It migrates the schema (migrate.go)
// and refuses, with a *SchemaTooNewError, a database a newer
// cordon-server has migrated.
// maxPostgresConns bounds each process's connections to PostgreSQL for
// Cordon's own tables (the README's scale-out section sizes
// max_connections from it).
const maxPostgresConns = 50

func Open(ctx context.Context, dataDir, dsn string, opts ...Option) (*Store, error) {
	s := &Store{historyLimit: 500, ids: newIdentities()}
	for _, o := range opts {
		o(s)
	}
	var dial gorm.Dialector
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		dial = postgres.Open(dsn)
		s.dialect, s.dsn = "postgres", dsn
	case dsn == "" || strings.HasPrefix(dsn, "sqlite:"):
		path := strings.TrimPrefix(dsn, "sqlite:")
		if path == "" {
			path = filepath.Join(dataDir, "cordon.db")
		}
		// immediate transactions take the write lock at BEGIN, so the admin
		// CLI and serve (separate processes on one file) queue on
		// busy_timeout instead of failing with SQLITE_BUSY mid-transaction.
		// synchronous=FULL: an acknowledged report survives power loss too.
		// temp_store=MEMORY keeps savepoints' sub-journals off the disk.
		// The database holds credential hashes: 0600, like the keys.
		// SQLite gives its -wal and -shm files the database file's mode.
		if f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o600); err == nil {
			f.Close()
		}
		if err := os.Chmod(path, 0o600); err != nil {
			return nil, fmt.Errorf("database file: %w", err)
		}
		q := url.Values{}
		for _, p := range []string{"busy_timeout(15000)", "journal_mode(WAL)", "synchronous(FULL)", "foreign_keys(1)", "temp_store(MEMORY)"} {
			q.Add("_pragma", p)
		}
		q.Set("_txlock", "immediate")
		dial = sqlite.Open("file:" + path + "?" + q.Encode())
		s.dialect, s.path = "sqlite", path
	default:
		return nil, fmt.Errorf("unsupported database URL %q: use postgres://... or leave empty for SQLite", redact(dsn))
	}
	cfg := &gorm.Config{
		Logger: logger.Discard,
		// Prepared statements: PostgreSQL's are cached per connection by
		// pgx (its default statement-cache mode, keyed by the SQL text,
		// which within one connection means one search_path). gorm's
		// PrepareStmt is not used: a statement it first meets inside a
		// transaction is prepared on that transaction and prepared again
		// in every later one, and on SQLite the driver parses the SQL on
		// every execution whatever it was given, so it only added work
		// (BenchmarkIngest: 6–9% more CPU per report). SQLite's hot
		// writes are fixed SQL instead (SavePosture).
		NowFunc: func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) },
	}
	db, err := gorm.Open(dial, cfg)
	// Processes opening a new SQLite file at once all switch it to WAL,
	// which needs the file to one connection: SQLite answers the others
	// SQLITE_BUSY at once, not through busy_timeout. The file stays in
	// WAL once switched, so a moment later the open goes through.
	for try := 0; err != nil && s.dialect == "sqlite" && sqliteBusy(err) && try < 50; try++ {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		db, err = gorm.Open(dial, cfg)
	}
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, err
	}
	if s.dialect == "sqlite" {
		// SQLite has one writer; more connections only queue on its lock
		// (each with its own page cache). One connection lets database/sql
		// queue instead, cheaply, and another process (the admin CLI)
		// still waits on busy_timeout.
		sqlDB.SetMaxOpenConns(1)
	} else {
		// Idle connections are kept up to the cap: database/sql closes
		// any beyond MaxIdle as soon as it is returned, so under a
		// connect storm a smaller MaxIdle opened and closed PostgreSQL
		// backends (a fork and a SCRAM exchange each) many times a
		// second, measured as half of all CPU in system time. They
		// still close after a few minutes unused.
		sqlDB.SetMaxOpenConns(maxPostgresConns)
		sqlDB.SetMaxIdleConns(maxPostgresConns)
		sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	}
	s.db = db.WithContext(ctx)
	if err := migrate(ctx, sqlDB, s.dialect); err != nil {
		sqlDB.Close()
		return nil, err
	}
	// The chain's head row, made by the first Open; ON CONFLICT DO
	// NOTHING rather than FirstOrCreate, whose look-then-insert fails
	// with a duplicate key when two processes open a new database at once.
	if err := s.db.Clauses(clause.OnConflict{DoNothing: true}).Create(&AuditHead{ID: 1}).Error; err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("init audit head: %w", err)
	}
	return s, nil
}

// Dialect is "sqlite" or "postgres".
func (s *Store) Dialect() string { return s.dialect }

// Ping answers whether the database responds.
func (s *Store) Ping(ctx context.Context) error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	return sqlDB.PingContext(ctx)
}

// Close closes the database.
func (s *Store) Close() error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	return sqlDB.Close()
}

// DB exposes gorm for tests that must tamper with rows directly.
func (s *Store) DB() *gorm.DB { return s.db }

func (s *Store) with(ctx context.Context) *gorm.DB {
	if s.fixed != nil {
		ctx = s.fixed
	}
	return s.db.WithContext(ctx)
}

func notFound(err error) error {
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return ErrNotFound
	}
	return err
}

func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "<unparseable>"
	}
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	return u.String()
}

// InTx runs fn with a Store bound to one database transaction: every
// change fn makes through tx, and every audit entry it appends through
// tx.AppendAudit (which still takes the chain's head lock, now inside
// this transaction), commits together or not at all (AU-5). fn must use
// only tx: on SQLite the one connection is the transaction's until it
// ends, so a call through the outer Store would wait for it forever.
//
// Identities the transaction changes (a revocation, a renewal) are
// forgotten by the handshake cache once it has ended, committed or not,
// so that no reader can cache the state from before the commit.
func (s *Store) InTx(ctx context.Context, fn func(tx *Store) error) error {
	if s.changed != nil { // already in one: gorm nests a savepoint
		queued := s.queuedAudits()
		err := s.with(ctx).Transaction(func(db *gorm.DB) error {
			tx := *s
			tx.db = db
			return fn(&tx)
		})
		if err != nil && s.audits != nil {
			// The savepoint rolled back: so do the entries it queued.
			*s.audits = (*s.audits)[:queued]
		}
		return err
	}
	var changed []func()
	defer func() {
		for _, f := range changed {
			f()
		}
	}()
	return s.with(ctx).Transaction(func(db *gorm.DB) error {
		tx := *s
		tx.db, tx.changed = db, &changed
		return fn(&tx)
	})
}
