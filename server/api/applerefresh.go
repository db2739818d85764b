package api

import (
	"context"
	"net/http"

	"github.com/cordon-mdm/cordon/internal/httpjson"
	"github.com/cordon-mdm/cordon/server/audit"
)

// ActionAppleRefresh records that someone asked an Apple device for a
// fresh posture report.
const ActionAppleRefresh = "apple.refresh_requested"

// AppleRefresher asks an Apple device for its posture now
// (applemdm.MDM): the posture queries, and a push. A device Apple MDM
// does not manage is store.ErrNotFound.
type AppleRefresher interface {
	Refresh(ctx context.Context, deviceID string) error
}

// WithAppleRefresh serves POST /api/v1/devices/{id}/refresh.
func WithAppleRefresh(r AppleRefresher) Option { return func(a *API) { a.appleRefresh = r } }

func (a *API) refreshApple(w http.ResponseWriter, r *http.Request) {
	id, p := r.PathValue("id"), principal(r)
	if err := a.appleRefresh.Refresh(r.Context(), id); err != nil {
		a.fail(w, err)
		return
	}
	if err := a.audit.Record(r.Context(), audit.Entry{Actor: p.Actor, Source: httpjson.RemoteHost(r), Action: ActionAppleRefresh,
		Target: "device:" + id, Outcome: audit.Success}); err != nil {
		a.fail(w, err)
		return
	}
	httpjson.Write(w, http.StatusAccepted, map[string]any{"device_id": id,
		"queries": []string{"DeviceInformation", "SecurityInfo", "ProfileList", "InstalledApplicationList", "AvailableOSUpdates"}})
}
