package console

import (
	"bytes"
	"context"
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/auth"
	"github.com/cordon-mdm/cordon/server/commands"
	"github.com/cordon-mdm/cordon/server/compliance"
	"github.com/cordon-mdm/cordon/server/incidents"
	"github.com/cordon-mdm/cordon/server/status"
	"github.com/cordon-mdm/cordon/server/store"
)

var flashes = map[string]string{
	"lock":       "Lock queued.",
	"wipe":       "Wipe queued. It is delivered when the device connects.",
	"wipe-held":  "Wipe held: a second LASO must approve it (wipe rate limit).",
	"bt-block":   "Bluetooth block queued.",
	"incident":   "Incident updated.",
	"form":       "Response form saved.",
	"allow":      "Added to the allow-list.",
	"allow-del":  "Removed from the allow-list.",
	"approved":   "Request approved.",
	"denied":     "Request denied.",
	"endorsed":   "Request endorsed.",
	"unlocked":   "Account unlocked.",
	"key-off":    "API key disabled.",
	"user-off":   "User disabled; their sessions have ended.",
	"user-on":    "User enabled.",
	"role":       "Role changed; the user signs in again with it.",
	"signed-out": "Signed out.",
	"password":   "Password changed.",
}

// done redirects after a successful action (so a reload does not repeat
// it) with one of the fixed flash messages.
func done(w http.ResponseWriter, r *http.Request, to, flash string) {
	http.Redirect(w, r, to+"?done="+flash, http.StatusSeeOther)
}

// refused shows why the service refused an action, with the status the
// API gives (server/status, the one mapping both edges share).
func (c *Console) refused(w http.ResponseWriter, r *http.Request, v *visit, err error) {
	code := status.Of(err)
	if code == http.StatusServiceUnavailable {
		c.log.Error("console", "err", err)
		c.render(w, r, code, "error", v, view{Title: "Refused", Error: audit.ErrUnavailable.Error()})
		return
	}
	if code >= http.StatusInternalServerError {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, code, "error", v, view{Title: "Refused", Error: err.Error()})
}

// deviceRow is a device with its standing, for lists.
type deviceRow struct {
	store.Device
	Compliance string
	Reasons    []string
}

func (c *Console) deviceRows(r *http.Request) ([]deviceRow, error) {
	ds, err := c.records.ListDevices(r.Context())
	if err != nil {
		return nil, err
	}
	states, err := c.compliance.States(r.Context(), ds)
	if err != nil {
		return nil, err
	}
	rows := make([]deviceRow, 0, len(ds))
	for _, d := range ds {
		st := states[d.ID]
		rows = append(rows, deviceRow{Device: d, Compliance: st.State, Reasons: st.Reasons})
	}
	return rows, nil
}

// deviceNames maps device ids to names, for lists that name devices.
func (c *Console) deviceNames(ctx context.Context) (map[string]string, error) {
	ds, err := c.records.ListDevices(ctx)
	names := make(map[string]string, len(ds))
	for _, d := range ds {
		names[d.ID] = d.Name
	}
	return names, err
}

func openIncident(i *store.Incident) bool { return i.Status != "resolved" && i.Status != "closed" }

type overviewView struct {
	Devices, Online, Noncompliant, Quarantined, OpenIncidents, PendingRequests int
	Failing                                                                    []deviceRow
	Incidents                                                                  []store.Incident
	Names                                                                      map[string]string
	// Reporting is each open incident's IR-6 clock; Overdue lists those
	// with no notification accepted an hour after discovery.
	Reporting map[string]incidents.Reporting
	Overdue   []store.Incident
	// ReviewOverdue: an audit review (AU-6) is overdue.
	ReviewOverdue bool
}

func (c *Console) overview(w http.ResponseWriter, r *http.Request, v *visit) {
	if v.user.Role == auth.RoleUser {
		// Users report losses from the tray; here they see the Bluetooth
		// requests that name them as the supervisor to endorse.
		reqs, err := c.records.ListBluetoothRequests(r.Context())
		if err != nil {
			c.fail(w, r, err)
			return
		}
		var mine []store.BluetoothRequest
		for _, q := range reqs {
			if q.Supervisor == v.actor() && q.Status == "pending" {
				mine = append(mine, q)
			}
		}
		c.render(w, r, http.StatusOK, "home-user", v, view{Title: "Cordon", D: mine})
		return
	}
	rows, err := c.deviceRows(r)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	incs, err := c.records.ListIncidents(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	reqs, err := c.records.ListBluetoothRequests(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	o := overviewView{Devices: len(rows), Names: map[string]string{}}
	for _, d := range rows {
		o.Names[d.ID] = d.Name
		if d.Online {
			o.Online++
		}
		if d.Compliance != "" && d.Compliance != "compliant" {
			o.Noncompliant++
			o.Failing = append(o.Failing, d)
		}
		if d.QuarantinedAt != nil {
			o.Quarantined++
		}
	}
	for _, i := range incs {
		if openIncident(&i) {
			o.OpenIncidents++
			o.Incidents = append(o.Incidents, i)
		}
	}
	if o.Reporting, err = c.reporting(r.Context(), o.Incidents); err != nil {
		c.fail(w, r, err)
		return
	}
	if o.ReviewOverdue, err = c.reviewOverdue(r.Context()); err != nil {
		c.fail(w, r, err)
		return
	}
	for _, i := range o.Incidents {
		if o.Reporting[i.ID].Overdue {
			o.Overdue = append(o.Overdue, i)
		}
	}
	for _, q := range reqs {
		if q.Status == "pending" || q.Status == "endorsed" {
			o.PendingRequests++
		}
	}
	c.render(w, r, http.StatusOK, "overview", v, view{Title: "Overview", D: o})
}

type devicesView struct {
	Rows                []deviceRow
	Q, Status, Standing string
	Standings           []string
	Total               int
}

func (c *Console) devicesPage(w http.ResponseWriter, r *http.Request, v *visit) {
	rows, err := c.deviceRows(r)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	q := r.URL.Query()
	dv := devicesView{Q: strings.TrimSpace(q.Get("q")), Status: q.Get("status"), Standing: q.Get("compliance"), Total: len(rows)}
	seen := map[string]bool{}
	needle := strings.ToLower(dv.Q)
	for _, d := range rows {
		if d.Compliance != "" && !seen[d.Compliance] {
			seen[d.Compliance] = true
			dv.Standings = append(dv.Standings, d.Compliance)
		}
		hay := strings.ToLower(strings.Join([]string{d.ID, d.Name, d.Hostname, d.Owner, d.Serial, d.Platform}, " "))
		switch {
		case needle != "" && !strings.Contains(hay, needle):
		case dv.Status == "online" && !d.Online, dv.Status == "offline" && d.Online:
		case dv.Status == "revoked" && d.Status != "revoked":
		case dv.Standing != "" && d.Compliance != dv.Standing:
		default:
			dv.Rows = append(dv.Rows, d)
		}
	}
	slices.Sort(dv.Standings)
	c.render(w, r, http.StatusOK, "devices", v, view{Title: "Devices", D: dv})
}

type deviceView struct {
	Device    *store.Device
	State     compliance.State
	Posture   string
	Timeline  []store.LockEvent
	Commands  []store.Command
	Incidents []store.Incident
	Picture   Picture
}

func (c *Console) devicePage(w http.ResponseWriter, r *http.Request, v *visit) {
	c.showDevice(w, r, v, http.StatusOK, "")
}

// showDevice renders the device page, with msg as the error of an
// action that was refused.
func (c *Console) showDevice(w http.ResponseWriter, r *http.Request, v *visit, status int, msg string) {
	ctx := r.Context()
	d, err := c.records.GetDevice(ctx, r.PathValue("id"))
	if err != nil {
		c.refused(w, r, v, err) // 404 when there is no such device
		return
	}
	dv := deviceView{Device: d}
	if dv.State, err = c.compliance.State(ctx, d.ID); err != nil {
		c.fail(w, r, err)
		return
	}
	if d.Posture != "" {
		var buf bytes.Buffer
		if json.Indent(&buf, []byte(d.Posture), "", "  ") == nil {
			dv.Posture = buf.String()
		}
	}
	if dv.Timeline, err = c.records.LockTimeline(ctx, d.ID); err != nil {
		c.fail(w, r, err)
		return
	}
	locks := slices.Clone(dv.Timeline)
	slices.Reverse(dv.Timeline)
	if len(dv.Timeline) > 50 {
		dv.Timeline = dv.Timeline[:50]
	}
	if dv.Commands, err = c.records.DeviceCommands(ctx, d.ID, 50); err != nil {
		c.fail(w, r, err)
		return
	}
	incs, err := c.records.ListIncidents(ctx)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	for _, i := range incs {
		if i.DeviceID == d.ID {
			dv.Incidents = append(dv.Incidents, i)
		}
	}
	var latest *store.Incident // incidents come newest first
	if len(dv.Incidents) > 0 {
		latest = &dv.Incidents[0]
	}
	dv.Picture = devicePicture(d, locks, latest, incidents.DefaultSettings.Line, c.now().UTC())
	c.render(w, r, status, "device", v, view{Title: d.Name, Error: msg, D: dv})
}

func (c *Console) issue(w http.ResponseWriter, r *http.Request, v *visit, req commands.Request) {
	req.DeviceID, req.Actor, req.Role, req.Source = r.PathValue("id"), v.actor(), v.user.Role, v.source
	cmd, err := c.commands.Issue(r.Context(), req)
	if err != nil {
		c.refused(w, r, v, err)
		return
	}
	flash := req.Kind
	if req.Kind == "bluetooth_block" {
		flash = "bt-block"
	}
	if cmd.Status == "held" {
		flash = "wipe-held"
	}
	done(w, r, "/console/devices/"+url.PathEscape(req.DeviceID), flash)
}

func (c *Console) lockDevice(w http.ResponseWriter, r *http.Request, v *visit) {
	c.issue(w, r, v, commands.Request{Kind: "lock"})
}

func (c *Console) btBlock(w http.ResponseWriter, r *http.Request, v *visit) {
	c.issue(w, r, v, commands.Request{Kind: "bluetooth_block", Address: strings.TrimSpace(r.PostFormValue("address"))})
}

// wipeDevice asks for a fresh second factor however recent the sign-in:
// the code is checked (and spent) before the wipe is queued. A wrong code
// counts towards the lockout like a failed sign-in.
func (c *Console) wipeDevice(w http.ResponseWriter, r *http.Request, v *visit) {
	ctx := r.Context()
	target := "device:" + r.PathValue("id")
	if _, err := c.records.GetDevice(ctx, r.PathValue("id")); err != nil {
		c.refused(w, r, v, err)
		return
	}
	unlock, ok := c.holdSignIn(w, r, v, "step_up")
	if !ok {
		return
	}
	defer unlock()
	method, ok := c.secondFactor(ctx, v.user, r.PostFormValue("code"))
	if !ok {
		c.record(ctx, v.actor(), v.source, ActionStepUp, target, audit.Failure,
			map[string]string{"for": "wipe", "reason": "wrong or reused code"})
		if c.failedInSession(w, r, v, "step_up", "wrong or reused code") {
			return
		}
		c.showDevice(w, r, v, http.StatusForbidden, "Wipe not sent: the authenticator code is wrong or was already used.")
		return
	}
	c.record(ctx, v.actor(), v.source, ActionStepUp, target, audit.Success, map[string]string{"for": "wipe", "method": method})
	c.issue(w, r, v, commands.Request{Kind: "wipe", Confirm: strings.TrimSpace(r.PostFormValue("confirm"))})
}

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
		if iv.Status == "" && !openIncident(&i) || iv.Status != "" && iv.Status != "all" && i.Status != iv.Status {
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
	order := []string{"reported", "triaged", "contained", "resolved", "closed"}
	if i := slices.Index(order, inc.Status); i >= 0 {
		iv.Next = order[i+1:]
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
		Compromised: incidents.Compromised, Reimages: incidents.Reimages}
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

type bluetoothView struct {
	Allow    []store.BluetoothAllow
	Requests []store.BluetoothRequest
	Names    map[string]string
	Me       string
}

func (c *Console) bluetoothPage(w http.ResponseWriter, r *http.Request, v *visit) {
	ctx := r.Context()
	bv := bluetoothView{Me: v.actor()}
	var err error
	if bv.Allow, err = c.records.BluetoothAllowList(ctx); err != nil {
		c.fail(w, r, err)
		return
	}
	if bv.Requests, err = c.records.ListBluetoothRequests(ctx); err != nil {
		c.fail(w, r, err)
		return
	}
	if bv.Names, err = c.deviceNames(ctx); err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "bluetooth", v, view{Title: "Bluetooth", D: bv})
}

func (c *Console) addAllow(w http.ResponseWriter, r *http.Request, v *visit) {
	in := compliance.Allow{Address: strings.TrimSpace(r.PostFormValue("address")), Name: strings.TrimSpace(r.PostFormValue("name")),
		Scope: strings.TrimSpace(r.PostFormValue("scope")), Reason: strings.TrimSpace(r.PostFormValue("reason"))}
	if in.Scope == "" {
		in.Scope = "agency"
	}
	if _, err := c.compliance.AddAllow(r.Context(), in, v.actor(), v.source); err != nil {
		c.refused(w, r, v, err)
		return
	}
	done(w, r, "/console/bluetooth", "allow")
}

func (c *Console) deleteAllow(w http.ResponseWriter, r *http.Request, v *visit) {
	if err := c.compliance.RemoveAllow(r.Context(), r.PathValue("address"), v.actor(), v.source); err != nil {
		c.refused(w, r, v, err)
		return
	}
	done(w, r, "/console/bluetooth", "allow-del")
}

func (c *Console) decideRequest(approve bool) func(http.ResponseWriter, *http.Request, *visit) {
	return func(w http.ResponseWriter, r *http.Request, v *visit) {
		if _, err := c.compliance.Decide(r.Context(), r.PathValue("id"), approve, strings.TrimSpace(r.PostFormValue("reason")),
			nil, v.actor(), v.source); err != nil {
			c.refused(w, r, v, err)
			return
		}
		flash := "denied"
		if approve {
			flash = "approved"
		}
		done(w, r, "/console/bluetooth", flash)
	}
}

func (c *Console) endorseRequest(w http.ResponseWriter, r *http.Request, v *visit) {
	if _, err := c.compliance.Endorse(r.Context(), r.PathValue("id"), v.actor(), v.source); err != nil {
		c.refused(w, r, v, err)
		return
	}
	to := "/console/bluetooth"
	if !c.allowed(v.user.Role, "GET /console/bluetooth") {
		to = "/console/"
	}
	done(w, r, to, "endorsed")
}

type auditView struct {
	Entries []auditRow
	Verify  audit.VerifyResult
	Older   int64
	Action  string
}

type auditRow struct {
	store.AuditEntry
	Details map[string]string
}

// auditPage shows the newest entries (or those before ?before=SEQ) and
// the chain's verification.
func (c *Console) auditPage(w http.ResponseWriter, r *http.Request, v *visit) {
	ctx := r.Context()
	q := store.AuditQuery{Limit: 100, NewestFirst: true, Action: r.URL.Query().Get("action")}
	if n, err := strconv.ParseInt(r.URL.Query().Get("before"), 10, 64); err == nil && n > 0 {
		q.BeforeSeq = n
	}
	av := auditView{Action: q.Action}
	es, err := c.records.ListAudit(ctx, q)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	for _, e := range es {
		row := auditRow{AuditEntry: e}
		json.Unmarshal([]byte(e.Details), &row.Details)
		av.Entries = append(av.Entries, row)
	}
	if len(av.Entries) > 0 && av.Entries[len(av.Entries)-1].Seq > 1 {
		av.Older = av.Entries[len(av.Entries)-1].Seq
	}
	if av.Verify, err = c.audit.Verify(ctx); err != nil {
		c.fail(w, r, err)
		return
	}
	// AU-2: one entry for the page (its list and its verification), with
	// the filter; a page that cannot be recorded is not shown.
	if err := c.audit.Record(ctx, audit.Entry{Actor: v.actor(), Source: v.source, Action: audit.TrailRead, Target: "audit",
		Outcome: audit.Success, Details: map[string]string{"action": q.Action, "before": strconv.FormatInt(q.BeforeSeq, 10),
			"limit": strconv.Itoa(q.Limit), "entries": strconv.Itoa(len(es)), "verified": strconv.FormatBool(av.Verify.OK), "via": "console"}}); err != nil {
		c.log.Error("audit read", "err", err)
		c.render(w, r, http.StatusServiceUnavailable, "error", v, view{Title: "Unavailable", Error: "The audit trail cannot record this read; try again later."})
		return
	}
	c.render(w, r, http.StatusOK, "audit", v, view{Title: "Audit log", D: av})
}
