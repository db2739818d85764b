package api

import (
	"context"
	"net/http"
	"time"

	"github.com/cordon-mdm/cordon/internal/httpjson"
	"github.com/cordon-mdm/cordon/internal/timefmt"
	"github.com/cordon-mdm/cordon/server/compliance"
	"github.com/cordon-mdm/cordon/server/store"
)

// BluetoothDecisions runs the allow-list and its requests.
type BluetoothDecisions interface {
	AddAllow(ctx context.Context, in compliance.Allow, actor, source string) (*store.BluetoothAllow, error)
	RemoveAllow(ctx context.Context, address, actor, source string) error
	CreateRequest(ctx context.Context, in compliance.Request, actor, source string) (*store.BluetoothRequest, error)
	Endorse(ctx context.Context, id, actor, source string) (*store.BluetoothRequest, error)
	Decide(ctx context.Context, id string, approve bool, reason string, expires *time.Time, actor, source string) (*store.BluetoothRequest, error)
}

// BluetoothReader reads the allow-list and the requests.
type BluetoothReader interface {
	BluetoothAllowList(ctx context.Context) ([]store.BluetoothAllow, error)
	ListBluetoothRequests(ctx context.Context) ([]store.BluetoothRequest, error)
}

func allowJSON(x store.BluetoothAllow) map[string]any {
	m := map[string]any{"id": x.ID, "address": x.Address, "name": x.Name, "class": x.Class, "scope": x.Scope,
		"approved_by": x.ApprovedBy, "reason": x.Reason, "created_at": timefmt.JSON(x.CreatedAt), "expires_at": nil, "request": x.Request}
	if x.ExpiresAt != nil {
		m["expires_at"] = timefmt.JSON(*x.ExpiresAt)
	}
	return m
}

func (a *API) listAllow(w http.ResponseWriter, r *http.Request) {
	xs, err := a.complianceReader.BluetoothAllowList(r.Context())
	if err != nil {
		a.fail(w, err)
		return
	}
	out := make([]map[string]any, 0, len(xs))
	for _, x := range xs {
		out = append(out, allowJSON(x))
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"allowlist": out})
}

func (a *API) addAllow(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Address   string     `json:"address"`
		Name      string     `json:"name"`
		Class     uint32     `json:"class"`
		Scope     string     `json:"scope"`
		Reason    string     `json:"reason"`
		ExpiresAt *time.Time `json:"expires_at"`
	}
	if !a.decode(w, r, &body) {
		return
	}
	p := principal(r)
	x, err := a.compliance.AddAllow(r.Context(), compliance.Allow{Address: body.Address, Name: body.Name, Class: body.Class,
		Scope: body.Scope, Reason: body.Reason, ExpiresAt: body.ExpiresAt}, p.Actor, httpjson.RemoteHost(r))
	if err != nil {
		a.fail(w, err)
		return
	}
	httpjson.Write(w, http.StatusCreated, allowJSON(*x))
}

func (a *API) deleteAllow(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	if err := a.compliance.RemoveAllow(r.Context(), r.PathValue("address"), p.Actor, httpjson.RemoteHost(r)); err != nil {
		a.fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func requestJSON(x *store.BluetoothRequest) map[string]any {
	ts := func(t *time.Time) any {
		if t == nil {
			return nil
		}
		return timefmt.JSON(*t)
	}
	return map[string]any{"id": x.ID, "device_id": x.DeviceID, "address": x.Address, "name": x.Name, "class": x.Class,
		"reason": x.Reason, "requester": x.Requester, "supervisor": x.Supervisor, "status": x.Status,
		"endorsed_by": x.EndorsedBy, "endorsed_at": ts(x.EndorsedAt), "decided_by": x.DecidedBy, "decided_at": ts(x.DecidedAt),
		"decision": x.Decision, "created_at": timefmt.JSON(x.CreatedAt)}
}

func (a *API) listRequests(w http.ResponseWriter, r *http.Request) {
	xs, err := a.complianceReader.ListBluetoothRequests(r.Context())
	if err != nil {
		a.fail(w, err)
		return
	}
	out := make([]map[string]any, 0, len(xs))
	for i := range xs {
		out = append(out, requestJSON(&xs[i]))
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"requests": out})
}

func (a *API) createRequest(w http.ResponseWriter, r *http.Request) {
	var body struct {
		DeviceID   string `json:"device_id"`
		Address    string `json:"address"`
		Name       string `json:"name"`
		Class      uint32 `json:"class"`
		Reason     string `json:"reason"`
		Supervisor string `json:"supervisor"`
	}
	if !a.decode(w, r, &body) {
		return
	}
	p := principal(r)
	x, err := a.compliance.CreateRequest(r.Context(), compliance.Request{DeviceID: body.DeviceID, Address: body.Address, Name: body.Name,
		Class: body.Class, Reason: body.Reason, Supervisor: body.Supervisor}, p.Actor, httpjson.RemoteHost(r))
	if err != nil {
		a.fail(w, err)
		return
	}
	httpjson.Write(w, http.StatusCreated, requestJSON(x))
}

func (a *API) endorseRequest(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	x, err := a.compliance.Endorse(r.Context(), r.PathValue("id"), p.Actor, httpjson.RemoteHost(r))
	if err != nil {
		a.fail(w, err)
		return
	}
	httpjson.Write(w, http.StatusOK, requestJSON(x))
}

func (a *API) decideRequest(approve bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Reason    string     `json:"reason"`
			ExpiresAt *time.Time `json:"expires_at"`
		}
		if !a.decode(w, r, &body) {
			return
		}
		p := principal(r)
		x, err := a.compliance.Decide(r.Context(), r.PathValue("id"), approve, body.Reason, body.ExpiresAt, p.Actor, httpjson.RemoteHost(r))
		if err != nil {
			a.fail(w, err)
			return
		}
		httpjson.Write(w, http.StatusOK, requestJSON(x))
	}
}
