package console

import (
	"bytes"
	"context"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/cordon-mdm/cordon/server/incidents"
	"github.com/cordon-mdm/cordon/server/store"
)

type incidentsView struct {
	Incidents []store.Incident
	Names     map[string]string
	Status    string
}

func (c *Console) incidentsPage(w http.ResponseWriter, r *http.Request, v *visit) {
	incs, err := c.records.ListIncidents(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	iv := incidentsView{Status: r.URL.Query().Get("status")}
	if iv.Names, err = c.deviceNames(r.Context()); err != nil {
		c.fail(w, r, err)
		return
	}
	for _, i := range incs {
		if iv.Status == "" && !i.Open() || iv.Status != "" && iv.Status != "all" && i.Status != iv.Status {
			continue
		}
		iv.Incidents = append(iv.Incidents, i)
	}
	c.render(w, r, http.StatusOK, "incidents", v, view{Title: "Incidents", D: iv})
}

// reporting is the IR-6 clock of each incident.
func (c *Console) reporting(ctx context.Context, incs []store.Incident) (map[string]incidents.Reporting, error) {
	ids := make([]string, len(incs))
	for i := range incs {
		ids[i] = incs[i].ID
	}
	ns, err := c.records.NotificationsForIncidents(ctx, ids)
	if err != nil {
		return nil, err
	}
	by := map[string][]store.Notification{}
	for _, n := range ns {
		by[n.IncidentID] = append(by[n.IncidentID], n)
	}
	out := make(map[string]incidents.Reporting, len(incs))
	for i := range incs {
		out[incs[i].ID] = c.incidents.ReportClock(&incs[i], by[incs[i].ID])
	}
	return out, nil
}

type incidentView struct {
	Reporting     incidents.Reporting
	Notifications []store.Notification
	Incident      *store.Incident
	Device        *store.Device
	Timeline      []store.IncidentEvent
	Next          []string
	Picture       Picture
	Receipts      []receiptView
}

func (c *Console) incidentPage(w http.ResponseWriter, r *http.Request, v *visit) {
	ctx := r.Context()
	inc, err := c.records.GetIncident(ctx, r.PathValue("id"))
	if err != nil {
		c.refused(w, r, v, err) // 404 when there is no such incident
		return
	}
	iv := incidentView{Incident: inc}
	iv.Device, _ = c.records.GetDevice(ctx, inc.DeviceID)
	if iv.Timeline, err = c.records.IncidentTimeline(ctx, inc.ID); err != nil {
		c.fail(w, r, err)
		return
	}
	if iv.Notifications, err = c.records.IncidentNotifications(ctx, inc.ID); err != nil {
		c.fail(w, r, err)
		return
	}
	iv.Reporting = c.incidents.ReportClock(inc, iv.Notifications)
	if i := slices.Index(incidents.Statuses, inc.Status); i >= 0 {
		iv.Next = incidents.Statuses[i+1:]
	}
	locks, err := c.records.LockTimeline(ctx, inc.DeviceID)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	ns, err := c.records.IncidentNotifications(ctx, inc.ID)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	var lockCmd *store.Command
	if inc.LockCommand != "" {
		lockCmd, _ = c.records.GetCommand(ctx, inc.LockCommand) // the picture does without it
	}
	iv.Receipts = c.wipeReceipts(ctx, inc.DeviceID)
	iv.Picture = incidentPicture(inc, iv.Device, locks, iv.Timeline, lockCmd, ns, incidents.DefaultSettings.Line, c.now().UTC())
	c.render(w, r, http.StatusOK, "incident", v, view{Title: "Incident " + inc.ID, D: iv})
}

func (c *Console) updateIncident(w http.ResponseWriter, r *http.Request, v *visit) {
	u := incidents.Update{Status: r.PostFormValue("status"), Disposition: strings.TrimSpace(r.PostFormValue("disposition")),
		Actor: v.actor(), Source: v.source}
	var ok bool
	if u.EndedAt, ok = formTime(r, "ended_at"); !ok {
		c.render(w, r, http.StatusBadRequest, "error", v, view{Title: "Refused", Error: "ended at: use YYYY-MM-DDTHH:MM (UTC)"})
		return
	}
	if _, err := c.incidents.Update(r.Context(), r.PathValue("id"), u); err != nil {
		c.refused(w, r, v, err)
		return
	}
	done(w, r, "/console/incidents/"+url.PathEscape(r.PathValue("id")), "incident")
}

// formTime reads a time field of a console form: a datetime-local value
// (YYYY-MM-DDTHH:MM, taken as UTC) or RFC 3339. Empty is nil; ok is false
// when the value is neither.
func formTime(r *http.Request, name string) (t *time.Time, ok bool) {
	s := strings.TrimSpace(r.PostFormValue(name))
	if s == "" {
		return nil, true
	}
	v, err := time.Parse("2006-01-02T15:04", s)
	if err != nil {
		if v, err = time.Parse(time.RFC3339, s); err != nil {
			return nil, false
		}
	}
	v = v.UTC()
	return &v, true
}

type formView struct {
	Incident    *store.Incident
	Form        incidents.Form
	Body        template.HTML
	Compromised []string
	Reimages    []string
	FBIAt       string
	Receipts    []receiptView
}

// incidentForm is the response form in the console: printable (the
// stylesheet's print rules drop the navigation and the edit form), and
// editable by the LASO.
func (c *Console) incidentForm(w http.ResponseWriter, r *http.Request, v *visit) {
	inc, f, err := incidents.LoadForm(r.Context(), c.records, r.PathValue("id"), c.now())
	if err != nil {
		c.refused(w, r, v, err)
		return
	}
	var body bytes.Buffer
	if err := incidents.FormTemplate().Execute(&body, f); err != nil {
		c.fail(w, r, err)
		return
	}
	fv := formView{Incident: inc, Form: f, Body: template.HTML(body.String()), // escaped by html/template
		Compromised: incidents.Compromised, Reimages: incidents.Reimages, Receipts: c.wipeReceipts(r.Context(), inc.DeviceID)}
	if l, err := c.records.GetIncidentForm(r.Context(), inc.ID); err == nil && l.FBICopySentAt != nil {
		fv.FBIAt = l.FBICopySentAt.UTC().Format("2006-01-02T15:04")
	}
	c.render(w, r, http.StatusOK, "incidentform", v, view{Title: "Response form " + inc.ID, D: fv})
}

// updateIncidentForm saves the LASO's fields. Only the fields the form
// sent are set; an unchanged form is refused like the API's empty PATCH.
func (c *Console) updateIncidentForm(w http.ResponseWriter, r *http.Request, v *visit) {
	u := incidents.FormUpdate{Actor: v.actor(), Source: v.source}
	str := func(name string) *string {
		if _, ok := r.PostForm[name]; !ok {
			return nil
		}
		s := strings.TrimSpace(r.PostFormValue(name))
		return &s
	}
	u.Cause, u.ActionPlan = str("suspected_cause"), str("action_plan")
	u.CJICompromised, u.PIICompromised, u.Reimage = str("cji_compromised"), str("pii_compromised"), str("reimage_before_reconnect")
	var ok bool
	if u.FBICopySentAt, ok = formTime(r, "copies_to_fbi_cjis_iso_at"); !ok {
		c.render(w, r, http.StatusBadRequest, "error", v, view{Title: "Refused", Error: "copies sent to the FBI CJIS ISO at: use YYYY-MM-DDTHH:MM (UTC)"})
		return
	}
	if _, err := c.incidents.UpdateForm(r.Context(), r.PathValue("id"), u); err != nil {
		c.refused(w, r, v, err)
		return
	}
	done(w, r, "/console/incidents/"+url.PathEscape(r.PathValue("id"))+"/form", "form")
}
