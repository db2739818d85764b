// Package status is the one place where the services' errors become HTTP
// statuses, shared by the REST API and the web console, so that both
// edges answer a refusal alike (STYLE: errors become statuses in one
// function). The services decide nothing about HTTP; this package maps
// their sentinel errors at the edge.
package status

import (
	"errors"
	"net/http"

	"github.com/cordon-mdm/cordon/enroll"
	"github.com/cordon-mdm/cordon/internal/input"
	"github.com/cordon-mdm/cordon/profiles"
	"github.com/cordon-mdm/cordon/server/accounts"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/commands"
	"github.com/cordon-mdm/cordon/server/compliance"
	"github.com/cordon-mdm/cordon/server/incidents"
	"github.com/cordon-mdm/cordon/server/store"
)

// Of is the status for err: 4xx for a refusal the caller can act on,
// 500 for anything else (which the edge logs and does not show).
func Of(err error) int {
	var pe *profiles.Error
	switch {
	case err == nil:
		return http.StatusOK
	case errors.Is(err, audit.ErrUnavailable):
		// AU-5: the change was refused because its entry could not be
		// written; it may go through once the trail is writable again.
		return http.StatusServiceUnavailable
	case errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, commands.ErrForbidden), errors.Is(err, compliance.ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, store.ErrConflict), errors.Is(err, compliance.ErrState), errors.Is(err, commands.ErrRevoked),
		errors.Is(err, accounts.ErrLastAdmin):
		return http.StatusConflict
	case errors.Is(err, input.ErrInvalid), errors.As(err, &pe),
		errors.Is(err, enroll.ErrInvalid), errors.Is(err, commands.ErrInvalid), errors.Is(err, commands.ErrConfirm),
		errors.Is(err, incidents.ErrInvalid), errors.Is(err, incidents.ErrTransition),
		errors.Is(err, compliance.ErrInvalid), errors.Is(err, compliance.ErrNameMismatch),
		errors.Is(err, accounts.ErrInvalid):
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}
