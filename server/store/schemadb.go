package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// ErrNotPostgres is SchemaDB's answer on SQLite, which has no schemas.
var ErrNotPostgres = errors.New("only a PostgreSQL store has companion schemas")

// SchemaDB opens a connection pool to Cordon's PostgreSQL database whose
// search path is the companion schema "<Cordon's schema>_<name>" that a
// migration made: the place for an embedded library's own tables
// (nanomdm's, whose names clash with Cordon's). The caller closes it.
func (s *Store) SchemaDB(ctx context.Context, name string) (*sql.DB, error) {
	schema, err := s.companion(ctx, name)
	if err != nil {
		return nil, err
	}
	cfg, err := pgx.ParseConfig(s.dsn)
	if err != nil {
		return nil, fmt.Errorf("database URL: %w", err)
	}
	cfg.RuntimeParams["search_path"] = pgx.Identifier{schema}.Sanitize()
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(20)
	db.SetMaxIdleConns(20) // as in Open: no open-and-close churn under load
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// SchemaURL is Cordon's database URL with the companion schema
// "<Cordon's schema>_<name>" as its search path, for a library that
// opens its own connections from a URL (smallstep's CA database).
func (s *Store) SchemaURL(ctx context.Context, name string) (string, error) {
	schema, err := s.companion(ctx, name)
	if err != nil {
		return "", err
	}
	u, err := url.Parse(s.dsn)
	if err != nil {
		return "", fmt.Errorf("database URL: %w", err)
	}
	q := u.Query()
	q.Set("search_path", pgx.Identifier{schema}.Sanitize())
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// companion names the companion schema name, which must exist.
func (s *Store) companion(ctx context.Context, name string) (string, error) {
	if s.dialect != "postgres" {
		return "", ErrNotPostgres
	}
	var current string
	if err := s.with(ctx).Raw("SELECT current_schema()").Scan(&current).Error; err != nil {
		return "", err
	}
	schema := current + "_" + name
	var exists bool
	if err := s.with(ctx).Raw("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = ?)", schema).Scan(&exists).Error; err != nil {
		return "", err
	}
	if !exists {
		return "", fmt.Errorf("schema %q does not exist: no migration made it", schema)
	}
	return schema, nil
}
