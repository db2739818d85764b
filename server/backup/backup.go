// Package backup takes a consistent online backup of a server's data
// dir and database into one encrypted file (internal/cryptarchive), and
// restores one into a new data dir.
//
// Consistency: serve goes on writing while the backup runs, so what is
// copied when matters.
//  1. Every file of the data dir except the live database (its -wal,
//     -shm and -journal), lock files, atomicfile's temporary files,
//     sockets and the CA's bbolt database is copied first, each read
//     twice until two reads agree (a file written in place, such as the
//     Apple MDM's, is never taken half-written). The audit checkpoint
//     file is cut after its last complete line.
//  2. Then the database is snapshotted (VACUUM INTO). Every checkpoint in
//     the copied checkpoint file was signed before the snapshot, so it
//     covers entries the snapshot holds: a checkpoint beyond the chain's
//     head is what audit verify reports as a truncated log, and this
//     order never produces one. Checkpoints signed after the file was
//     copied are rows of the snapshot, or in neither.
//  3. Last, the CA's bbolt database (ca/authority.db), read twice until
//     two reads agree: it is then at least as new as the snapshot, so
//     every certificate a restored device row names is one the CA knows
//     (revoking it looks it up there), and a certificate the CA signed
//     or revoked after the snapshot is one more it knows, never one less.
//
// On PostgreSQL the database is pg_dump's: the backup holds the data dir
// only and says so.
package backup

import (
	"context"
	"errors"
	"path"
	"strings"
	"time"

	"github.com/cordon-mdm/cordon/server/audit"
)

// Audit actions (details: sha256 of the backup file, files, database).
const (
	ActionCreated  = "backup.created"
	ActionRestored = "backup.restored"
)

// Names inside the archive.
const (
	// DatabaseMember is the SQLite snapshot; restore puts it where serve
	// looks by default.
	DatabaseMember = "cordon.db"
	boltMember     = "ca/authority.db"
	databaseURL    = "database.url"
)

// Info is the archive's info record.
type Info struct {
	Format    int       `json:"format"`
	CreatedAt time.Time `json:"created_at"`
	Host      string    `json:"host"`
	Version   string    `json:"server_version"`
	// Database is "sqlite" (its snapshot is DatabaseMember) or
	// "postgres" (not included: pg_dump).
	Database string `json:"database"`
}

// Auditor records the backup's and the restore's entries.
type Auditor interface {
	Record(ctx context.Context, e audit.Entry) error
}

// ErrNotEmpty: restore writes only into a new or empty data dir.
var ErrNotEmpty = errors.New("is not empty: restore writes only into a new or empty data dir")

// skipped reports whether a data dir file (slash path) stays out of
// every backup: locks, and the temporary files of atomic writes.
func skipped(name string) bool {
	base := path.Base(name)
	return base == ".lock" || strings.HasSuffix(base, ".lock") || strings.HasPrefix(base, ".tmp-")
}
