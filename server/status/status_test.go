package status

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

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

// TestEveryExportedError: each service error the edges can meet, bare and
// wrapped, has its status.
func TestEveryExportedError(t *testing.T) {
	for err, want := range map[error]int{
		store.ErrNotFound:              http.StatusNotFound,
		accounts.ErrLastAdmin:          http.StatusConflict,
		accounts.ErrInvalid:            http.StatusBadRequest,
		audit.ErrUnavailable:           http.StatusServiceUnavailable,
		store.ErrConflict:              http.StatusConflict,
		commands.ErrForbidden:          http.StatusForbidden,
		commands.ErrInvalid:            http.StatusBadRequest,
		commands.ErrConfirm:            http.StatusBadRequest,
		commands.ErrRevoked:            http.StatusConflict,
		compliance.ErrForbidden:        http.StatusForbidden,
		compliance.ErrInvalid:          http.StatusBadRequest,
		compliance.ErrState:            http.StatusConflict,
		compliance.ErrNameMismatch:     http.StatusBadRequest,
		incidents.ErrInvalid:           http.StatusBadRequest,
		incidents.ErrTransition:        http.StatusBadRequest,
		enroll.ErrInvalid:              http.StatusBadRequest,
		input.ErrInvalid:               http.StatusBadRequest,
		input.Errorf("name", "bad"):    http.StatusBadRequest,
		&profiles.Error{Field: "name"}: http.StatusBadRequest,
		errors.New("disk full"):        http.StatusInternalServerError,
	} {
		if got := Of(err); got != want {
			t.Errorf("Of(%v) = %d, want %d", err, got, want)
		}
		if got := Of(fmt.Errorf("context: %w", err)); got != want {
			t.Errorf("Of(wrapped %v) = %d, want %d", err, got, want)
		}
	}
}
