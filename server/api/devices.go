package api

import (
	"context"
	"net/http"
	"strconv"

	"github.com/cordon-mdm/cordon/internal/httpjson"
	"github.com/cordon-mdm/cordon/internal/input"
	"github.com/cordon-mdm/cordon/internal/timefmt"
	"github.com/cordon-mdm/cordon/server/compliance"
	"github.com/cordon-mdm/cordon/server/store"
)

// DeviceReader reads devices and what they reported.
type DeviceReader interface {
	GetDevice(ctx context.Context, id string) (*store.Device, error)
	ListDevices(ctx context.Context) ([]store.Device, error)
	LockTimeline(ctx context.Context, deviceID string) ([]store.LockEvent, error)
	PostureHistory(ctx context.Context, deviceID string, limit int) ([]store.PostureReport, error)
}

// Devices performs device lifecycle actions.
type Devices interface {
	Revoke(ctx context.Context, deviceID, reason, actor, source string) error
}

func (a *API) listDevices(w http.ResponseWriter, r *http.Request) {
	ds, err := a.store.ListDevices(r.Context())
	if err != nil {
		a.fail(w, err)
		return
	}
	// One read of the findings for the whole list, not one per device.
	var states map[string]compliance.State
	if a.compliance != nil {
		if states, err = a.compliance.States(r.Context(), ds); err != nil {
			a.fail(w, err)
			return
		}
	}
	out := make([]Device, 0, len(ds))
	for i := range ds {
		d := deviceJSON(&ds[i])
		if st, ok := states[d.ID]; ok {
			setCompliance(&d, st)
		}
		out = append(out, d)
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"devices": out})
}

func (a *API) getDevice(w http.ResponseWriter, r *http.Request) {
	d, err := a.store.GetDevice(r.Context(), r.PathValue("id"))
	if err != nil {
		a.fail(w, err)
		return
	}
	out := deviceJSON(d)
	if err := a.withCompliance(r.Context(), &out); err != nil {
		a.fail(w, err)
		return
	}
	httpjson.Write(w, http.StatusOK, out)
}

func (a *API) lockTimeline(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := a.store.GetDevice(r.Context(), id); err != nil {
		a.fail(w, err)
		return
	}
	es, err := a.store.LockTimeline(r.Context(), id)
	if err != nil {
		a.fail(w, err)
		return
	}
	out := make([]map[string]any, 0, len(es))
	for _, e := range es {
		out = append(out, clockJSON(map[string]any{"at": timefmt.JSON(e.At), "state": e.State, "source": e.Source},
			e.ClockSkew, e.SkewSeconds))
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"entries": out})
}

// postureHistory is the device's stored reports, newest received first
// (the store keeps a bounded number), each with its clock flags.
func (a *API) postureHistory(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := a.store.GetDevice(r.Context(), id); err != nil {
		a.fail(w, err)
		return
	}
	limit := 100
	if q := r.URL.Query().Get("limit"); q != "" {
		n, err := strconv.Atoi(q)
		if err != nil || n < 1 || n > 500 {
			httpjson.Error(w, http.StatusBadRequest, "limit must be a whole number from 1 to 500")
			return
		}
		limit = n
	}
	rs, err := a.store.PostureHistory(r.Context(), id, limit)
	if err != nil {
		a.fail(w, err)
		return
	}
	out := make([]map[string]any, 0, len(rs))
	for _, rep := range rs {
		out = append(out, postureHistoryJSON(rep))
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"reports": out})
}

func (a *API) revokeDevice(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Reason string `json:"reason"`
	}
	if r.ContentLength != 0 && !a.decode(w, r, &body) {
		return
	}
	if err := input.FreeText("reason", body.Reason, MaxReason); err != nil {
		a.fail(w, err)
		return
	}
	if body.Reason == "" {
		body.Reason = "revoked by " + principal(r).Actor
	}
	if err := a.devices.Revoke(r.Context(), r.PathValue("id"), body.Reason, principal(r).Actor, httpjson.RemoteHost(r)); err != nil {
		a.fail(w, err)
		return
	}
	d, err := a.store.GetDevice(r.Context(), r.PathValue("id"))
	if err != nil {
		a.fail(w, err)
		return
	}
	out := deviceJSON(d)
	if err := a.withCompliance(r.Context(), &out); err != nil {
		a.fail(w, err)
		return
	}
	httpjson.Write(w, http.StatusOK, out)
}
