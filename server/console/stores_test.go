package console

import (
	"github.com/cordon-mdm/cordon/enroll"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/commands"
	"github.com/cordon-mdm/cordon/server/compliance"
	"github.com/cordon-mdm/cordon/server/incidents"
	"github.com/cordon-mdm/cordon/server/review"
	"github.com/cordon-mdm/cordon/server/store"
)

// What the server passes satisfies each interface the console declares,
// so a signature that drifts on either side fails to compile here, not
// only in the server's wiring.
var (
	_ Records          = (*store.Store)(nil)
	_ DeviceRecords    = (*store.Store)(nil)
	_ IncidentRecords  = (*store.Store)(nil)
	_ BluetoothRecords = (*store.Store)(nil)
	_ AuditRecords     = (*store.Store)(nil)

	_ Auditor            = (*audit.Log)(nil)
	_ Commands           = (*commands.Service)(nil)
	_ Incidents          = (*incidents.Service)(nil)
	_ Compliance         = (*compliance.Service)(nil)
	_ Standing           = (*compliance.Service)(nil)
	_ BluetoothDecisions = (*compliance.Service)(nil)
	_ Tokens             = (*enroll.Service)(nil)
	_ Reviews            = (*review.Service)(nil)
)
