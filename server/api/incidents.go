package api

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/cordon-mdm/cordon/internal/httpjson"
	"github.com/cordon-mdm/cordon/internal/timefmt"
	"github.com/cordon-mdm/cordon/server/incidents"
	"github.com/cordon-mdm/cordon/server/store"
)

// Incidents runs incidents.
type Incidents interface {
	Open(ctx context.Context, r incidents.Report) (*store.Incident, error)
	Update(ctx context.Context, id string, u incidents.Update) (*store.Incident, error)
	// ReportClock is IR-6's reporting clock on the service's clock.
	ReportClock(inc *store.Incident, ns []store.Notification) incidents.Reporting
	UpdateForm(ctx context.Context, id string, u incidents.FormUpdate) (*store.IncidentForm, error)
	LostModes
}

// IncidentReader reads incidents back.
type IncidentReader interface {
	GetIncident(ctx context.Context, id string) (*store.Incident, error)
	ListIncidents(ctx context.Context) ([]store.Incident, error)
	IncidentTimeline(ctx context.Context, id string) ([]store.IncidentEvent, error)
	IncidentNotifications(ctx context.Context, id string) ([]store.Notification, error)
	NotificationsForIncidents(ctx context.Context, ids []string) ([]store.Notification, error)
	// What the response form is filled from.
	incidents.FormReader
}

// WithIncidents serves the incident routes.
func WithIncidents(i Incidents, r IncidentReader) Option {
	return func(a *API) { a.incidents, a.incidentReader = i, r }
}

func (a *API) openIncident(w http.ResponseWriter, r *http.Request) {
	var body struct {
		DeviceID    string     `json:"device_id"`
		Kind        string     `json:"kind"`
		LockState   string     `json:"lock_state"`
		StartedAt   time.Time  `json:"started_at"`
		EndedAt     *time.Time `json:"ended_at"`
		Location    string     `json:"location"`
		Latitude    *float64   `json:"latitude"`
		Longitude   *float64   `json:"longitude"`
		OutsideUS   bool       `json:"outside_us"`
		Description string     `json:"description"`
	}
	if !a.decode(w, r, &body) {
		return
	}
	p := principal(r)
	inc, err := a.incidents.Open(r.Context(), incidents.Report{DeviceID: body.DeviceID, Kind: body.Kind, LockState: body.LockState,
		StartedAt: body.StartedAt, EndedAt: body.EndedAt, Location: body.Location, Latitude: body.Latitude, Longitude: body.Longitude,
		OutsideUS: body.OutsideUS, Description: body.Description, Actor: p.Actor, Source: httpjson.RemoteHost(r)})
	if err != nil {
		a.fail(w, err)
		return
	}
	httpjson.Write(w, http.StatusCreated, incidentJSON(inc, nil))
}

func (a *API) listIncidents(w http.ResponseWriter, r *http.Request) {
	is, err := a.incidentReader.ListIncidents(r.Context())
	if err != nil {
		a.fail(w, err)
		return
	}
	ids := make([]string, len(is))
	for i := range is {
		ids[i] = is[i].ID
	}
	ns, err := a.incidentReader.NotificationsForIncidents(r.Context(), ids)
	if err != nil {
		a.fail(w, err)
		return
	}
	byIncident := map[string][]store.Notification{}
	for _, n := range ns {
		byIncident[n.IncidentID] = append(byIncident[n.IncidentID], n)
	}
	out := make([]map[string]any, 0, len(is))
	for i := range is {
		m := incidentJSON(&is[i], nil)
		m["reporting"] = reportingJSON(a.incidents.ReportClock(&is[i], byIncident[is[i].ID]))
		out = append(out, m)
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"incidents": out})
}

func (a *API) getIncident(w http.ResponseWriter, r *http.Request) {
	inc, tl, ok := a.loadIncident(w, r)
	if !ok {
		return
	}
	out := incidentJSON(inc, tl)
	// Who was told, and what failed: a send that keeps failing must be
	// visible on the incident, not only in a log.
	ns, err := a.incidentReader.IncidentNotifications(r.Context(), inc.ID)
	if err != nil {
		a.fail(w, err)
		return
	}
	list := make([]map[string]any, 0, len(ns))
	for _, n := range ns {
		m := map[string]any{"channel": n.Channel, "recipient": n.Recipient, "attempts": n.Attempts, "sent_at": nil,
			"accepted_at": nil, "queued_at": timefmt.JSON(n.CreatedAt), "last_error": n.LastError}
		if n.SentAt != nil {
			m["sent_at"] = timefmt.JSON(*n.SentAt)
			// The same instant, named for IR-6 and with fixed precision.
			m["accepted_at"] = timefmt.JSON(*n.SentAt)
		}
		list = append(list, m)
	}
	out["notifications"] = list
	out["reporting"] = reportingJSON(a.incidents.ReportClock(inc, ns))
	httpjson.Write(w, http.StatusOK, out)
}

func (a *API) updateIncident(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Status      string     `json:"status"`
		EndedAt     *time.Time `json:"ended_at"`
		Disposition string     `json:"disposition"`
	}
	if !a.decode(w, r, &body) {
		return
	}
	p := principal(r)
	inc, err := a.incidents.Update(r.Context(), r.PathValue("id"), incidents.Update{Status: body.Status, EndedAt: body.EndedAt,
		Disposition: body.Disposition, Actor: p.Actor, Source: httpjson.RemoteHost(r)})
	if err != nil {
		a.fail(w, err)
		return
	}
	httpjson.Write(w, http.StatusOK, incidentJSON(inc, nil))
}

func (a *API) incidentForm(w http.ResponseWriter, r *http.Request) {
	_, f, err := incidents.LoadForm(r.Context(), a.incidentReader, r.PathValue("id"), time.Now())
	if err != nil {
		a.fail(w, err)
		return
	}
	if strings.Contains(r.Header.Get("Accept"), "text/html") {
		// The printable page: no script, no inline style; its print
		// stylesheet is the console's own file.
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; frame-ancestors 'none'; base-uri 'none'")
		f.WriteHTML(w)
		return
	}
	httpjson.Write(w, http.StatusOK, f)
}

// updateIncidentForm sets the LASO's fields of the response form.
func (a *API) updateIncidentForm(w http.ResponseWriter, r *http.Request) {
	var body incidents.FormUpdate
	if !a.decode(w, r, &body) {
		return
	}
	p := principal(r)
	body.Actor, body.Source = p.Actor, httpjson.RemoteHost(r)
	if _, err := a.incidents.UpdateForm(r.Context(), r.PathValue("id"), body); err != nil {
		a.fail(w, err)
		return
	}
	_, f, err := incidents.LoadForm(r.Context(), a.incidentReader, r.PathValue("id"), time.Now())
	if err != nil {
		a.fail(w, err)
		return
	}
	httpjson.Write(w, http.StatusOK, f)
}

func (a *API) loadIncident(w http.ResponseWriter, r *http.Request) (*store.Incident, []store.IncidentEvent, bool) {
	inc, err := a.incidentReader.GetIncident(r.Context(), r.PathValue("id"))
	if err != nil {
		a.fail(w, err)
		return nil, nil, false
	}
	tl, err := a.incidentReader.IncidentTimeline(r.Context(), inc.ID)
	if err != nil {
		a.fail(w, err)
		return nil, nil, false
	}
	return inc, tl, true
}

func incidentJSON(inc *store.Incident, tl []store.IncidentEvent) map[string]any {
	ts := func(t *time.Time) any {
		if t == nil {
			return nil
		}
		return timefmt.JSON(*t)
	}
	out := map[string]any{"id": inc.ID, "device_id": inc.DeviceID, "reporter": inc.Reporter, "detection": inc.Detection,
		"kind": inc.Kind, "started_at": ts(&inc.StartedAt), "ended_at": ts(inc.EndedAt), "location": inc.Location,
		"latitude": inc.Latitude, "longitude": inc.Longitude, "outside_us": inc.OutsideUS, "description": inc.Description,
		"lock_state": inc.LockState, "lock_reported": inc.LockReported, "lock_observed": inc.LockObserved,
		"contradiction": inc.Contradiction, "category": inc.Category, "duration_class": inc.DurationClass,
		"severity": inc.Severity, "status": inc.Status, "disposition": inc.Disposition,
		"created_at": ts(&inc.CreatedAt), "escalate_at": ts(inc.EscalateAt),
		"lock_command": inc.LockCommand, "wipe_recommended": inc.WipeRecommended, "quarantined": inc.Quarantined}
	if tl != nil {
		events := make([]map[string]any, 0, len(tl))
		for _, e := range tl {
			events = append(events, map[string]any{"at": timefmt.JSON(e.At), "actor": e.Actor, "action": e.Action, "detail": e.Detail})
		}
		out["timeline"] = events
		out["device_location"] = deviceLocationJSON(tl)
	}
	return out
}

// reportingJSON is IR-6's reporting clock on an incident.
func reportingJSON(rc incidents.Reporting) map[string]any {
	m := map[string]any{"discovered_at": timefmt.JSON(rc.DiscoveredAt), "deadline": timefmt.JSON(rc.Deadline),
		"notified_at": nil, "notified_in_seconds": nil, "overdue": rc.Overdue, "late": rc.Late, "text": rc.Text()}
	if rc.NotifiedAt != nil {
		m["notified_at"] = timefmt.JSON(*rc.NotifiedAt)
		m["notified_in_seconds"] = rc.NotifiedIn.Seconds()
	}
	return m
}
