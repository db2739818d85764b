package notify

import "github.com/cordon-mdm/cordon/server/store"

// The store satisfies each interface the service declares, so a signature
// that drifts on either side fails to compile here, not only in the
// server's wiring.
var (
	_ Store        = (*store.Store)(nil)
	_ Directory    = (*store.Store)(nil)
	_ Outbox       = (*store.Store)(nil)
	_ OutboxReader = (*store.Store)(nil)
)
