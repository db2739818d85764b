package api

import (
	"github.com/cordon-mdm/cordon/enroll"
	"github.com/cordon-mdm/cordon/server/appleprofile"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/commands"
	"github.com/cordon-mdm/cordon/server/compliance"
	"github.com/cordon-mdm/cordon/server/incidents"
	"github.com/cordon-mdm/cordon/server/ratelimit"
	"github.com/cordon-mdm/cordon/server/review"
	"github.com/cordon-mdm/cordon/server/store"
)

// What the server passes satisfies each interface the API declares, so a
// signature that drifts on either side fails to compile here, not only in
// the server's wiring.
var (
	_ Store            = (*store.Store)(nil)
	_ Pinger           = (*store.Store)(nil)
	_ DeviceReader     = (*store.Store)(nil)
	_ AuditReader      = (*store.Store)(nil)
	_ CommandReader    = (*store.Store)(nil)
	_ IncidentReader   = (*store.Store)(nil)
	_ ComplianceReader = (*store.Store)(nil)
	_ ProfileReader    = (*store.Store)(nil)
	_ FindingReader    = (*store.Store)(nil)
	_ BluetoothReader  = (*store.Store)(nil)
	_ Transactor       = (*store.Store)(nil)

	_ Auditor            = (*audit.Log)(nil)
	_ Checkpoints        = (*audit.Anchor)(nil)
	_ Tokens             = (*enroll.Service)(nil)
	_ Limiter            = (*ratelimit.Limiter)(nil)
	_ Commands           = (*commands.Service)(nil)
	_ Incidents          = (*incidents.Service)(nil)
	_ Compliance         = (*compliance.Service)(nil)
	_ Standing           = (*compliance.Service)(nil)
	_ ProfileChanges     = (*compliance.Service)(nil)
	_ BluetoothDecisions = (*compliance.Service)(nil)
	_ Reviews            = (*review.Service)(nil)
	_ AppleProfiles      = (*appleprofile.Issuer)(nil)
)
