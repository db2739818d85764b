package api

import (
	"context"
	"net/http"

	"github.com/cordon-mdm/cordon/internal/httpjson"
	"github.com/cordon-mdm/cordon/internal/timefmt"
	"github.com/cordon-mdm/cordon/server/incidents"
	"github.com/cordon-mdm/cordon/server/store"
)

// LostModes runs a LASO's lost-mode steps on an incident's device
// (*incidents.Service).
type LostModes interface {
	LostModeAction(ctx context.Context, incidentID, action, actor, source string) (*store.Incident, error)
}

// lostMode queues a lost-mode step for the incident's device: enable,
// locate (again), sound or disable. It answers 202: the device answers
// later, and its answer lands on the incident's timeline.
func (a *API) lostMode(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Action string `json:"action"`
	}
	if !a.decode(w, r, &body) {
		return
	}
	p := principal(r)
	inc, err := a.incidents.LostModeAction(r.Context(), r.PathValue("id"), body.Action, p.Actor, httpjson.RemoteHost(r))
	if err != nil {
		a.fail(w, err)
		return
	}
	httpjson.Write(w, http.StatusAccepted, map[string]any{"incident_id": inc.ID, "device_id": inc.DeviceID,
		"action": body.Action, "status": "queued"})
}

// deviceLocationJSON is the newest location a device in lost mode
// reported for the incident, or null: accuracy in metres (null when the
// device did not know it), the device's own time (untrusted, null when
// it gave none) and the server's receipt.
func deviceLocationJSON(tl []store.IncidentEvent) any {
	l := incidents.LastDeviceLocation(tl)
	if l == nil {
		return nil
	}
	m := map[string]any{"latitude": l.Latitude, "longitude": l.Longitude, "accuracy_meters": l.Accuracy,
		"device_time": nil, "received_at": timefmt.JSON(l.ReceivedAt)}
	if l.DeviceTime != nil {
		m["device_time"] = timefmt.JSON(*l.DeviceTime)
	}
	return m
}
