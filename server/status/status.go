// Package status is the one place where the services' errors become HTTP
// statuses, shared by the REST API and the web console, so that both
// edges answer a refusal alike (STYLE: errors become statuses in one
// function). The services decide nothing about HTTP; this package maps
// their sentinel errors at the edge. Its table test fails when a package
// whose errors reach the edges exports an error this function does not
// know.
package status

import (
	"errors"
	"github.com/cordon-mdm/cordon/server/agentpkg"
	"net/http"

	"github.com/cordon-mdm/cordon/enroll"
	"github.com/cordon-mdm/cordon/internal/input"
	"github.com/cordon-mdm/cordon/pki/identity"
	"github.com/cordon-mdm/cordon/profiles"
	"github.com/cordon-mdm/cordon/profiles/apple"
	"github.com/cordon-mdm/cordon/server/accounts"
	"github.com/cordon-mdm/cordon/server/applemdm"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/auth"
	"github.com/cordon-mdm/cordon/server/commands"
	"github.com/cordon-mdm/cordon/server/compliance"
	"github.com/cordon-mdm/cordon/server/incidents"
	"github.com/cordon-mdm/cordon/server/releases"
	"github.com/cordon-mdm/cordon/server/store"
)

// Of is the status for err: 4xx for a refusal the caller can act on,
// 500 for anything else (which the edge logs and does not show).
func Of(err error) int {
	var pe *profiles.Error
	switch {
	case err == nil:
		return http.StatusOK
	case errors.Is(err, audit.ErrUnavailable), errors.Is(err, audit.ErrNoCheckpointKey):
		// AU-5: the change was refused because its entry could not be
		// written; it may go through once the trail is writable again.
		// Without a checkpoint key there is nothing to sign or show yet.
		return http.StatusServiceUnavailable
	case errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, auth.ErrUnauthenticated):
		return http.StatusUnauthorized
	case errors.Is(err, commands.ErrForbidden), errors.Is(err, compliance.ErrForbidden), errors.Is(err, incidents.ErrForbidden),
		// An enrollment token that does not let the device in.
		errors.Is(err, enroll.ErrUnknownToken), errors.Is(err, enroll.ErrTokenExpired), errors.Is(err, enroll.ErrTokenUsed),
		// TPM evidence that does not prove what it claims.
		errors.Is(err, enroll.ErrAttestation), errors.Is(err, store.ErrChallengeUsed), errors.Is(err, releases.ErrForbidden),
		errors.Is(err, store.ErrTokenBad), errors.Is(err, store.ErrTokenExp), errors.Is(err, store.ErrTokenUsed),
		errors.Is(err, store.ErrTokenScope):
		return http.StatusForbidden
	case errors.Is(err, store.ErrConflict), errors.Is(err, compliance.ErrState), errors.Is(err, agentpkg.ErrNoBuild), errors.Is(err, commands.ErrRevoked),
		errors.Is(err, accounts.ErrLastAdmin), errors.Is(err, incidents.ErrNoLostMode),
		// Apple: no push certificate yet; a device not enrolled in MDM.
		errors.Is(err, applemdm.ErrNoPushCert), errors.Is(err, applemdm.ErrNotEnrolled),
		errors.Is(err, releases.ErrDuplicate), errors.Is(err, releases.ErrDowngrade):
		return http.StatusConflict
	case errors.Is(err, input.ErrInvalid), errors.As(err, &pe), errors.Is(err, apple.ErrNoPasscode),
		errors.Is(err, enroll.ErrInvalid), errors.Is(err, enroll.ErrIdentityClaimed), errors.Is(err, identity.ErrBadCSR),
		errors.Is(err, commands.ErrInvalid), errors.Is(err, commands.ErrConfirm), errors.Is(err, releases.ErrInvalid),
		errors.Is(err, incidents.ErrInvalid), errors.Is(err, incidents.ErrTransition),
		errors.Is(err, compliance.ErrInvalid), errors.Is(err, compliance.ErrNameMismatch), errors.Is(err, compliance.ErrRefused),
		errors.Is(err, accounts.ErrInvalid), errors.Is(err, auth.ErrPassword), errors.Is(err, applemdm.ErrPushCert):
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}
