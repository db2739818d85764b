package commands

import (
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/store"
)

// The store and the trail satisfy each interface the queue declares, so a
// signature that drifts on either side fails to compile here, not only in
// the server's wiring.
var (
	_ Store             = (*store.Store)(nil)
	_ DeviceReader      = (*store.Store)(nil)
	_ CommandStore      = (*store.Store)(nil)
	_ DeliveryStore     = (*store.Store)(nil)
	_ Transactor        = (*store.Store)(nil)
	_ Auditor           = (*audit.Log)(nil)
	_ CertificateReader = (*store.Store)(nil)
)
