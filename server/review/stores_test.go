package review

import (
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/store"
)

// The store and the trail satisfy each interface the review declares, so
// a signature that drifts on either side fails to compile here, not only
// in the server's wiring.
var (
	_ Store       = (*store.Store)(nil)
	_ TrailReader = (*store.Store)(nil)
	_ ReviewStore = (*store.Store)(nil)
	_ Reviewers   = (*store.Store)(nil)
	_ Auditor     = (*audit.Log)(nil)
)
