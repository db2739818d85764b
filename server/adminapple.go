package server

import (
	"context"
	"path/filepath"

	"github.com/cordon-mdm/cordon/server/applemdm"
)

// StorePushCert installs the agency's APNs push certificate from the
// server host (cordon-server apple push-cert). It writes nanomdm's store
// in the data dir directly, beside a running serve or without one: the
// server reads the certificate afresh at its next push and profile, so a
// renewal needs no restart. The audit entry is the same as the console's.
func (a *Admin) StorePushCert(ctx context.Context, certPEM, keyPEM []byte) (applemdm.PushCertStatus, error) {
	certs := applemdm.NewPushCerts(filepath.Join(a.dataDir, "apple-mdm"), a.Store, a.Audit, nil)
	return certs.Store(ctx, certPEM, keyPEM, a.actor, "local")
}
