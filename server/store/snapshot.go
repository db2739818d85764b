package store

import (
	"context"
	"errors"
	"fmt"
	"os"
)

// ErrNoSnapshot: the database is PostgreSQL, whose backup is pg_dump's.
var ErrNoSnapshot = errors.New("the database is PostgreSQL: back it up with pg_dump (the backup covers the data dir only)")

// SQLiteFile is the SQLite database's file ("" on PostgreSQL): what a
// backup of the data dir leaves to Snapshot, with its -wal and -shm.
func (s *Store) SQLiteFile() string { return s.path }

// Snapshot writes a consistent copy of the SQLite database to path, a
// file that must not exist, while other connections and processes go on
// writing: VACUUM INTO reads one snapshot of the database in a single
// read transaction (WAL mode lets writers go on meanwhile) and writes a
// compacted database with no -wal file. The copy is fsync'd and 0600:
// it holds credential hashes.
func (s *Store) Snapshot(ctx context.Context, path string) error {
	if s.dialect != "sqlite" {
		return ErrNoSnapshot
	}
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("snapshot %s: %w", path, os.ErrExist)
	}
	if err := s.with(ctx).Exec("VACUUM INTO ?", path).Error; err != nil {
		os.Remove(path)
		return fmt.Errorf("snapshot of the database: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Chmod(0o600); err != nil {
		return err
	}
	return f.Sync()
}
