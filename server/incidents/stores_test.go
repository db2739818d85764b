package incidents

import (
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/store"
)

// The store and the trail satisfy each interface the service declares, so
// a signature that drifts on either side fails to compile here, not only
// in the server's wiring.
var (
	_ Store          = (*store.Store)(nil)
	_ DeviceReader   = (*store.Store)(nil)
	_ IncidentStore  = (*store.Store)(nil)
	_ FormStore      = (*store.Store)(nil)
	_ FormReader     = (*store.Store)(nil)
	_ Transactor     = (*store.Store)(nil)
	_ MetricsReader  = (*store.Store)(nil)
	_ LostModeReader = (*store.Store)(nil)
	_ Auditor        = (*audit.Log)(nil)
)
