package compliance

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
	_ ProfileStore   = (*store.Store)(nil)
	_ FindingStore   = (*store.Store)(nil)
	_ BluetoothStore = (*store.Store)(nil)
	_ ClockRecords   = (*store.Store)(nil)
	_ Transactor     = (*store.Store)(nil)
	_ DeviceCounter  = (*store.Store)(nil)
	_ Auditor        = (*audit.Log)(nil)
)
