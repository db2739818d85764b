package server

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/cordon-mdm/cordon/internal/filelock"
	"github.com/cordon-mdm/cordon/pki"
	"github.com/cordon-mdm/cordon/server/applescep"
	"github.com/cordon-mdm/cordon/server/store"
)

// serveLockFile, in the data dir, is held by the one process serving it
// on SQLite.
const serveLockFile = "serve.lock"

// dataDirShare decides how this process shares its data dir, and
// returns the CA's options accordingly. On PostgreSQL the CA's state is
// in the database, with the rest, so the data dir holds only keys and
// settings: any number of processes may serve it, on this host or on
// copies of it. On SQLite the CA's bbolt file and the in-process
// delivery of commands belong to one process, so a second one is
// refused at once, by name, before it opens the CA.
func dataDirShare(ctx context.Context, cfg config, st *store.Store) (*filelock.Lock, []pki.Option, error) {
	opts := []pki.Option{pki.WithDeviceLifetime(cfg.deviceLifetime), pki.WithLogger(cfg.log)}
	if st.Dialect() == "postgres" {
		u, err := st.SchemaURL(ctx, "ca")
		if err != nil {
			return nil, nil, fmt.Errorf("the CA's database: %w", err)
		}
		// The data dir is copied to every server after the first start,
		// so that start makes every key: the SCEP RA too, which a lone
		// server on SQLite makes at its first Apple enrollment. Servers
		// holding different RAs would each fail the others' enrollments.
		if _, err := applescep.LoadRA(cfg.dataDir); err != nil {
			return nil, nil, fmt.Errorf("SCEP RA: %w", err)
		}
		return nil, append(opts, pki.WithPostgres(u)), nil
	}
	l, err := filelock.TryLock(filepath.Join(cfg.dataDir, serveLockFile))
	if errors.Is(err, filelock.ErrLocked) {
		return nil, nil, fmt.Errorf("data dir %s is served by another cordon-server already: on SQLite one process serves a data dir "+
			"(several processes need PostgreSQL, --database postgres://...)", cfg.dataDir)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("data dir lock: %w", err)
	}
	return l, opts, nil
}

func unlock(l *filelock.Lock) {
	if l != nil {
		l.Unlock()
	}
}
