package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"

	sqlitedrv "github.com/glebarez/go-sqlite"
	"github.com/glebarez/sqlite"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/database"
	"github.com/pressly/goose/v3/lock"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// The schema changes only through these files, one set per dialect
// (migrations/sqlite, migrations/postgres), applied in order by goose and
// recorded in its version table. A released migration is never edited:
// the next change is the next file, in both sets.
//
//go:embed migrations
var migrations embed.FS

// versionTable is goose's own name for its record of applied versions.
const versionTable = goose.DefaultTablename

// models are the rows the store persists, one gorm model per table. The
// schema is the migrations', not gorm's: TestEveryModelFieldHasAColumn
// checks that every field of these has its column after migrating, so a
// field added without a migration fails the tests, not an agency's
// server.
var models = []any{&Device{}, &Certificate{}, &EnrollmentToken{}, &PostureReport{},
	&LockEvent{}, &APIKey{}, &User{}, &AuditEntry{}, &AuditHead{}, &AuditCheckpoint{}, &Command{}, &Incident{}, &IncidentEvent{}, &Notification{},
	&Finding{}, &ProfileDoc{}, &Group{}, &BluetoothAllow{}, &BluetoothRequest{}, &Session{},
	&AuditReview{}, &IncidentForm{}, &ScepChallenge{}, &AppleEnrollment{}, &TicketKey{}, &WipeReceipt{}, &EnrollChallenge{},
	&AgentRelease{}, &AgentRollout{}}

// SchemaTooNewError is Open's answer for a database a newer cordon-server
// has migrated: this binary would misread tables it does not know, and
// the migrations only go forward.
type SchemaTooNewError struct {
	// Database is the database's schema version, Known the highest this
	// binary embeds.
	Database, Known int64
}

func (e *SchemaTooNewError) Error() string {
	return fmt.Sprintf("database schema is at version %d but this cordon-server knows only up to %d: "+
		"run a newer cordon-server (downgrades are not supported)", e.Database, e.Known)
}

// sqliteBusy reports SQLite's SQLITE_BUSY (5), with or without an
// extended code.
func sqliteBusy(err error) bool {
	var e *sqlitedrv.Error
	return errors.As(err, &e) && e.Code()&0xff == 5
}

func gooseDialect(dialect string) database.Dialect {
	if dialect == "postgres" {
		return goose.DialectPostgres
	}
	return goose.DialectSQLite3
}

// provider runs dialect's migrations on db. On PostgreSQL it takes a
// session advisory lock first, so that several servers (and the admin
// CLI) starting on one database migrate it once, one after the other.
func provider(db *sql.DB, dialect string) (*goose.Provider, error) {
	fsys, err := fs.Sub(migrations, "migrations/"+dialect)
	if err != nil {
		return nil, err
	}
	opts := []goose.ProviderOption{goose.WithDisableGlobalRegistry(true)}
	if dialect == "postgres" {
		// Polled every second for up to five minutes: the other process's
		// migrations are short, and goose's 5s default slows every start.
		l, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
		if err != nil {
			return nil, err
		}
		opts = append(opts, goose.WithSessionLocker(l))
	}
	return goose.NewProvider(gooseDialect(dialect), db, fsys, opts...)
}

// migrate brings db to the newest schema this binary embeds: a database
// AutoMigrate made before versioned migrations is adopted at version 1
// first; one at a newer version than this binary knows is refused.
func migrate(ctx context.Context, db *sql.DB, dialect string) error {
	if err := adoptAutoMigrated(ctx, db, dialect); err != nil {
		return err
	}
	p, err := provider(db, dialect)
	if err != nil {
		return err
	}
	// Not p.Close: that closes db, which the Store goes on using.
	current, err := checkVersion(ctx, p)
	if err != nil {
		return err
	}
	for {
		_, err := p.Up(ctx)
		if err == nil {
			break
		}
		// SQLite has no session lock: two processes starting together
		// may both decide to apply a migration. Each runs in a BEGIN
		// IMMEDIATE transaction, so the second waits for the first, then
		// fails whole (its table already exists) and rolls back. As long
		// as the version moved meanwhile, look again: the work is done.
		now, verr := checkVersion(ctx, p)
		if verr != nil {
			return verr
		}
		if dialect != "sqlite" || now <= current {
			return fmt.Errorf("migrate: %w", err)
		}
		current = now
	}
	_, err = checkVersion(ctx, p)
	return err
}

// checkVersion returns the database's schema version, or a
// *SchemaTooNewError when it is past the newest migration embedded.
func checkVersion(ctx context.Context, p *goose.Provider) (int64, error) {
	current, known, err := p.GetVersions(ctx)
	if err != nil {
		return 0, fmt.Errorf("schema version: %w", err)
	}
	if current > known {
		return current, &SchemaTooNewError{Database: current, Known: known}
	}
	return current, nil
}

// adoptAutoMigrated records version 1 in a database that gorm's
// AutoMigrate made before Cordon had versioned migrations (application
// tables, no version table), once it has checked that the database
// carries the whole baseline: 00001_baseline reproduces that schema, so
// the database is then where version 1 leaves a fresh one. It runs in one
// transaction, under the lock goose migrates under on PostgreSQL and
// SQLite's write lock (_txlock=immediate), so a second process starting
// at the same time waits and then finds the version table.
func adoptAutoMigrated(ctx context.Context, db *sql.DB, dialect string) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if dialect == "postgres" {
		if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", lock.DefaultLockID); err != nil {
			return fmt.Errorf("migration lock: %w", err)
		}
	}
	have, err := columns(ctx, tx, dialect)
	if err != nil {
		return err
	}
	delete(have, "sqlite_sequence")
	if _, ok := have[versionTable]; ok || len(have) == 0 {
		return nil
	}
	want, err := baselineColumns(ctx)
	if err != nil {
		return fmt.Errorf("baseline schema: %w", err)
	}
	var missing []string
	found := false
	for table, cols := range want {
		for _, c := range cols {
			if slices.Contains(have[table], c) {
				found = true
			} else {
				missing = append(missing, table+"."+c)
			}
		}
	}
	if !found {
		return nil // none of Cordon's tables: the migrations make them all
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return fmt.Errorf("the database has Cordon's tables but not all of the schema versioned migrations start from "+
			"(missing %s): start the last cordon-server release before versioned migrations on it once, then this one",
			strings.Join(missing, ", "))
	}
	st, err := database.NewStore(gooseDialect(dialect), versionTable)
	if err != nil {
		return err
	}
	if err := st.CreateVersionTable(ctx, tx); err != nil {
		return fmt.Errorf("create version table: %w", err)
	}
	// goose's own first row (version 0), then the baseline's.
	for _, v := range []int64{0, 1} {
		if err := st.Insert(ctx, tx, database.InsertRequest{Version: v}); err != nil {
			return fmt.Errorf("record version %d: %w", v, err)
		}
	}
	return tx.Commit()
}

// baselineColumns is every table and column 00001_baseline creates, read
// from a scratch in-memory SQLite database it runs on: the migration file
// stays the one statement of the baseline (both dialects' files make the
// same tables and columns; TestBaselineMatchesThePreviousSchema checks).
func baselineColumns(ctx context.Context) (map[string][]string, error) {
	g, err := gorm.Open(sqlite.Open(":memory:"), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		return nil, err
	}
	db, err := g.DB()
	if err != nil {
		return nil, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1) // each connection to :memory: is its own database
	p, err := provider(db, "sqlite")
	if err != nil {
		return nil, err
	}
	if _, err := p.UpTo(ctx, 1); err != nil {
		return nil, err
	}
	cols, err := columns(ctx, db, "sqlite")
	delete(cols, versionTable)
	delete(cols, "sqlite_sequence")
	return cols, err
}

// columns lists the columns of every table in the database (PostgreSQL:
// in the current schema), by table.
func columns(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, dialect string) (map[string][]string, error) {
	query := `SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p WHERE m.type = 'table'`
	if dialect == "postgres" {
		query = `SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema()`
	}
	rows, err := q.QueryContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("list columns: %w", err)
	}
	defer rows.Close()
	out := map[string][]string{}
	for rows.Next() {
		var table, col string
		if err := rows.Scan(&table, &col); err != nil {
			return nil, err
		}
		out[table] = append(out[table], col)
	}
	return out, rows.Err()
}
