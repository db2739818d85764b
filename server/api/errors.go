package api

import (
	"errors"
	"net/http"

	"github.com/cordon-mdm/cordon/internal/httpjson"
	"github.com/cordon-mdm/cordon/internal/input"
	"github.com/cordon-mdm/cordon/profiles"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/status"
)

// fail answers err with the status server/status gives it (the mapping
// the console shares); a 500 is logged and not shown.
func (a *API) fail(w http.ResponseWriter, err error) {
	var pe *profiles.Error
	switch code := status.Of(err); {
	case code == http.StatusNotFound:
		httpjson.Error(w, code, "not found")
	case errors.As(err, &pe):
		httpjson.Write(w, code, map[string]any{"error": err.Error(), "field": pe.Field, "line": pe.Line})
	case code < http.StatusInternalServerError:
		httpjson.Error(w, code, err.Error())
	case code == http.StatusServiceUnavailable:
		// The database's words stay in the log; the caller learns only
		// that the trail refused the change.
		a.log.Error("api", "err", err)
		httpjson.Error(w, code, audit.ErrUnavailable.Error())
	default:
		a.log.Error("api", "err", err)
		httpjson.Error(w, http.StatusInternalServerError, "internal error")
	}
}

// MaxReason is the longest free-text reason or note a route takes.
const MaxReason = 1024

// decode reads the one JSON document of a body through input.DecodeJSON
// (trailing data, unknown fields and bad text refused; then v's Check),
// answering 400 itself when it fails.
func (a *API) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := input.DecodeJSON(http.MaxBytesReader(w, r.Body, input.MaxBody), v, input.MaxBody); err != nil {
		a.fail(w, err)
		return false
	}
	return true
}
