package server

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"

	"github.com/cordon-mdm/cordon/server/applemdm"
)

// StorePushCert installs the agency's APNs push certificate from the
// server host (cordon-server apple push-cert). It writes nanomdm's store
// directly (its tables in PostgreSQL, or its files in the data dir),
// beside a running serve or without one: the server reads the
// certificate afresh at its next push and profile, so a renewal needs no
// restart. The audit entry is the same as the console's.
func (a *Admin) StorePushCert(ctx context.Context, certPEM, keyPEM []byte) (applemdm.PushCertStatus, error) {
	var db *sql.DB
	if a.Store.Dialect() == "postgres" {
		var err error
		if db, err = a.Store.SchemaDB(ctx, "nanomdm"); err != nil {
			return applemdm.PushCertStatus{}, fmt.Errorf("apple mdm store: %w", err)
		}
		defer db.Close()
	}
	certs, err := applemdm.NewPushCerts(filepath.Join(a.dataDir, "apple-mdm"), db, a.Store, a.Audit, nil)
	if err != nil {
		return applemdm.PushCertStatus{}, err
	}
	return certs.Store(ctx, certPEM, keyPEM, a.actor, "local")
}
