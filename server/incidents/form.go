package incidents

import (
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"

	"github.com/cordon-mdm/cordon/internal/timefmt"
	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/server/store"
)

// Time layouts of the form (AU-8: UTC, hundredths or finer).
const (
	HumanTime = timefmt.HumanLayout
	JSONTime  = timefmt.JSONLayout
)

// Form is the IT Security Incident Response Form (CJIS Security Policy,
// Appendix F.1) with the agency plan's checklist, as the LASO hands it
// to the CSA ISO. What Cordon knows is filled from its data, each with
// the source it came from; the rest is the LASO's (store.IncidentForm).
type Form struct {
	IncidentID        string    `json:"incident_id"`
	DateOfReport      string    `json:"date_of_report"`
	DateOfIncident    string    `json:"date_of_incident"`
	IncidentEnded     string    `json:"incident_ended"`
	PointsOfContact   []string  `json:"points_of_contact"`
	Location          string    `json:"location"`
	OutsideUS         bool      `json:"outside_united_states"`
	SystemsAffected   []string  `json:"systems_affected"`
	MethodOfDetection string    `json:"method_of_detection"`
	Nature            string    `json:"nature_of_incident"`
	Description       string    `json:"description"`
	ActionsTaken      []string  `json:"actions_taken"`
	Resolution        string    `json:"resolution"`
	Status            string    `json:"status"`
	Checklist         Checklist `json:"checklist"`
}

// Known is a checklist item Cordon fills from its own data: the value and
// where it came from.
type Known struct {
	Value  string `json:"value"`
	Source string `json:"source"`
}

// Span is one stretch of a lock state, as the device reported it.
type Span struct {
	State string    `json:"state"`
	From  time.Time `json:"-"`
	To    time.Time `json:"-"`
}

// MarshalJSON writes the span's times in the form's layout.
func (s Span) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{"state": s.State, "from": s.From.UTC().Format(JSONTime), "to": s.To.UTC().Format(JSONTime)})
}

// Checklist is the agency plan's checklist for a lost or compromised
// device.
type Checklist struct {
	// Filled from Cordon's data.
	AntimalwareRunning     Known  `json:"antimalware_running"`
	LastSignatureUpdate    Known  `json:"last_signature_update"`
	LastOSUpdate           Known  `json:"last_os_update"`
	PendingSecurityUpdates Known  `json:"pending_security_updates"`
	LockState              Known  `json:"lock_state"`
	LockSpans              []Span `json:"lock_spans"`
	DevicesAffected        Known  `json:"devices_affected"`
	OtherEquipment         Known  `json:"other_equipment_affected"`
	// The LASO's.
	SuspectedCause string `json:"suspected_cause"`
	CJICompromised string `json:"cji_compromised"`
	PIICompromised string `json:"pii_compromised"`
	ActionPlan     string `json:"action_plan"`
	Reimage        string `json:"reimage_before_reconnect"`
	FBICopySentAt  string `json:"copies_to_fbi_cjis_iso_at"`
	EditedBy       string `json:"edited_by"`
	EditedAt       string `json:"edited_at"`
}

// FormData is what the form is filled from.
type FormData struct {
	Incident *store.Incident
	Device   *store.Device // nil when the device is gone
	Timeline []store.IncidentEvent
	// Posture is the device's report nearest the start of the loss.
	Posture *store.PostureReport
	// Locks is the device's lock timeline, oldest first.
	Locks []store.LockEvent
	// Owned are the active devices of the device's owner (itself too).
	Owned []store.Device
	// LASO is the LASO's part; nil: nothing filled in yet.
	LASO *store.IncidentForm
	// Now ends the window of an ongoing incident.
	Now time.Time
}

// LockSpans cuts the lock timeline (oldest first) into the states in
// force between from and to. Before the first report the state is
// "unknown".
func LockSpans(locks []store.LockEvent, from, to time.Time) []Span {
	if !to.After(from) {
		return nil
	}
	var out []Span
	state, at := "unknown", from
	for _, e := range locks {
		if !e.At.After(from) {
			state = e.State
			continue
		}
		if !e.At.Before(to) {
			break
		}
		if e.State == state {
			continue
		}
		out = append(out, Span{State: state, From: at, To: e.At})
		state, at = e.State, e.At
	}
	return append(out, Span{State: state, From: at, To: to})
}

// BuildForm fills the form.
func BuildForm(d FormData) Form {
	inc, dev, timeline := d.Incident, d.Device, d.Timeline
	ts := func(t time.Time) string { return t.UTC().Format(HumanTime) }
	js := func(t time.Time) string { return t.UTC().Format(JSONTime) }
	f := Form{IncidentID: inc.ID, DateOfReport: js(inc.CreatedAt), DateOfIncident: js(inc.StartedAt),
		Location: inc.Location, OutsideUS: inc.OutsideUS, Description: inc.Description, Status: inc.Status,
		Resolution: inc.Disposition}
	if inc.EndedAt != nil {
		f.IncidentEnded = js(*inc.EndedAt)
	}
	if inc.Latitude != nil && inc.Longitude != nil {
		f.Location = strings.TrimSpace(fmt.Sprintf("%s (%.5f, %.5f)", inc.Location, *inc.Latitude, *inc.Longitude))
	}
	contacts := []string{"reporter: " + inc.Reporter}
	seen := map[string]bool{inc.Reporter: true}
	for _, e := range timeline {
		if !seen[e.Actor] && e.Actor != "server" {
			seen[e.Actor] = true
			contacts = append(contacts, "responder: "+e.Actor)
		}
	}
	f.PointsOfContact = contacts
	system := fmt.Sprintf("device %s", inc.DeviceID)
	if dev != nil {
		system = fmt.Sprintf("%s (device %s, %s, %s %s, owner %s)", dev.Name, dev.ID, dev.Platform, dev.OSName, dev.OSVersion, orNone(dev.Owner))
	}
	f.SystemsAffected = []string{system}
	f.MethodOfDetection = "reported by " + inc.Reporter
	if inc.Detection == "telemetry" {
		f.MethodOfDetection = "detected by Cordon from device telemetry (last report unlocked, then silent)"
	}
	f.Nature = fmt.Sprintf("%s; lock state %s (reported %s, observed %s); %s duration; category %s; severity %s",
		strings.ReplaceAll(inc.Kind, "_", " "), inc.LockState, inc.LockReported, orNone(inc.LockObserved),
		inc.DurationClass, inc.Category, inc.Severity)
	if inc.Contradiction != "" {
		f.Nature += "; " + inc.Contradiction
	}
	for _, e := range timeline {
		f.ActionsTaken = append(f.ActionsTaken, fmt.Sprintf("%s %s: %s %s", ts(e.At), e.Actor, e.Action, e.Detail))
	}
	f.Checklist = checklist(d)
	return f
}

func checklist(d FormData) Checklist {
	inc := d.Incident
	ts := func(t time.Time) string { return t.UTC().Format(HumanTime) }
	var c Checklist
	none := "no posture report from this device is stored"
	c.AntimalwareRunning = Known{"unknown", none}
	c.LastSignatureUpdate = Known{"unknown", none}
	c.LastOSUpdate = Known{"unknown", none}
	c.PendingSecurityUpdates = Known{"unknown", none}
	if r := d.Posture; r != nil {
		src := fmt.Sprintf("posture report %s, trusted time %s (the device's report nearest the start of the loss, %s)",
			r.ReportID, ts(r.TrustedAt), offset(r.TrustedAt.Sub(inc.StartedAt)))
		var p protocol.Posture
		if err := json.Unmarshal([]byte(r.Body), &p); err != nil {
			src += "; the report is unreadable"
		}
		field := func(name string) string { return src + ", field " + name }
		if h := p.Hygiene; h != nil && h.AntimalwareOn != nil {
			v := "no"
			if *h.AntimalwareOn {
				v = "yes"
				if len(h.Antimalware) > 0 {
					v += " (" + strings.Join(h.Antimalware, ", ") + ")"
				}
			}
			c.AntimalwareRunning = Known{v, field("hygiene.antimalware_on")}
		} else {
			c.AntimalwareRunning = Known{"unknown", field("hygiene.antimalware_on") + " (not reported)"}
		}
		if h := p.Hygiene; h != nil && h.AntimalwareSignaturesAt != nil {
			age := inc.StartedAt.Sub(*h.AntimalwareSignaturesAt)
			c.LastSignatureUpdate = Known{fmt.Sprintf("%s (%.1f days before the loss)", ts(*h.AntimalwareSignaturesAt), age.Hours()/24),
				field("hygiene.antimalware_signatures_at")}
		} else {
			c.LastSignatureUpdate = Known{"unknown", field("hygiene.antimalware_signatures_at") + " (the platform does not say)"}
		}
		if pt := p.Patch; pt != nil && pt.LastUpdate != nil {
			c.LastOSUpdate = Known{fmt.Sprintf("%s (%.1f days before the loss)", ts(*pt.LastUpdate), inc.StartedAt.Sub(*pt.LastUpdate).Hours()/24),
				field("patch.last_update")}
		} else {
			c.LastOSUpdate = Known{"unknown", field("patch.last_update") + " (not reported)"}
		}
		if pt := p.Patch; pt != nil && pt.PendingSecurity != nil {
			v := fmt.Sprintf("%d", *pt.PendingSecurity)
			var names []string
			for _, u := range pt.Pending {
				names = append(names, u.Name+" ("+u.Severity+")")
			}
			if len(names) > 0 {
				v += ": " + strings.Join(names, ", ")
			}
			c.PendingSecurityUpdates = Known{v, field("patch.pending_security, patch.pending")}
		} else {
			c.PendingSecurityUpdates = Known{"unknown", field("patch.pending_security") + " (not reported)"}
		}
	}
	end := d.Now
	if inc.EndedAt != nil {
		end = *inc.EndedAt
	}
	c.LockSpans = LockSpans(d.Locks, inc.StartedAt, end)
	var parts []string
	for _, s := range c.LockSpans {
		parts = append(parts, fmt.Sprintf("%s from %s to %s", s.State, ts(s.From), ts(s.To)))
	}
	lockSrc := fmt.Sprintf("the device's lock timeline (%d changes reported, at the reports' trusted times), from the start of the loss to ", len(d.Locks))
	if inc.EndedAt != nil {
		lockSrc += "its end"
	} else {
		lockSrc += "now (ongoing)"
	}
	c.LockState = Known{strings.Join(parts, "; "), lockSrc}
	c.DevicesAffected = Known{"1", "the incident names one device, " + inc.DeviceID}
	other := Known{"none", "no owner is recorded for the device"}
	if d.Device != nil && d.Device.Owner != "" {
		var names []string
		for _, o := range d.Owned {
			if o.ID != inc.DeviceID {
				names = append(names, fmt.Sprintf("%s (device %s, %s)", o.Name, o.ID, o.Platform))
			}
		}
		other = Known{"none", "active devices enrolled for " + d.Device.Owner}
		if len(names) > 0 {
			other.Value = "other devices of the same owner: " + strings.Join(names, "; ")
		}
	}
	c.OtherEquipment = other
	if l := d.LASO; l != nil {
		c.SuspectedCause, c.CJICompromised, c.PIICompromised = l.Cause, l.CJICompromised, l.PIICompromised
		c.ActionPlan, c.Reimage, c.EditedBy = l.ActionPlan, l.Reimage, l.UpdatedBy
		if l.FBICopySentAt != nil {
			c.FBICopySentAt = l.FBICopySentAt.UTC().Format(JSONTime)
		}
		if !l.UpdatedAt.IsZero() {
			c.EditedAt = l.UpdatedAt.UTC().Format(JSONTime)
		}
	}
	return c
}

// offset says how far a report's time lies from the start of the loss.
func offset(d time.Duration) string {
	switch {
	case d == 0:
		return "at the start"
	case d < 0:
		return (-d).Round(10*time.Millisecond).String() + " before the start"
	}
	return d.Round(10*time.Millisecond).String() + " after the start"
}

// formHTML is the printable page: no script, no inline style; the print
// stylesheet is the console's own file (CSP style-src 'self').
var formHTML = template.Must(template.New("form").Funcs(template.FuncMap{"human": human}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>IT Security Incident Response Form — {{.IncidentID}}</title>
<link rel="stylesheet" href="/console/static/form.css">
</head><body class="response-form">
<h1>IT Security Incident Response Form</h1>
{{template "form-body" .}}
</body></html>
{{define "form-body"}}<table class="form" id="form-f1">
<caption>Appendix F.1</caption>
<tr><th>Incident</th><td>{{.IncidentID}} ({{.Status}})</td></tr>
<tr><th>Date of report</th><td>{{human .DateOfReport}}</td></tr>
<tr><th>Date of incident</th><td>{{human .DateOfIncident}}{{if .IncidentEnded}} to {{human .IncidentEnded}}{{else}} (ongoing){{end}}</td></tr>
<tr><th>Points of contact</th><td>{{range .PointsOfContact}}{{.}}<br>{{end}}</td></tr>
<tr><th>Location</th><td>{{.Location}}{{if .OutsideUS}} — outside the United States{{end}}</td></tr>
<tr><th>Systems affected</th><td>{{range .SystemsAffected}}{{.}}<br>{{end}}</td></tr>
<tr><th>Method of detection</th><td>{{.MethodOfDetection}}</td></tr>
<tr><th>Nature of incident</th><td>{{.Nature}}</td></tr>
<tr><th>Description</th><td>{{.Description}}</td></tr>
<tr><th>Actions taken</th><td>{{range .ActionsTaken}}{{.}}<br>{{end}}</td></tr>
<tr><th>Resolution</th><td>{{.Resolution}}</td></tr>
<tr><th>Copies to the FBI CJIS ISO</th><td id="f-fbi">{{with .Checklist.FBICopySentAt}}sent {{human .}}{{else}}not yet sent{{end}}</td></tr>
</table>
{{with .Checklist}}<table class="form" id="form-checklist">
<caption>Checklist (agency plan, mobile devices)</caption>
<tr><th>Suspected cause</th><td id="f-cause">{{or .SuspectedCause "—"}}</td></tr>
<tr><th>Antimalware running at the time</th><td id="f-av">{{.AntimalwareRunning.Value}}<div class="source">source: {{.AntimalwareRunning.Source}}</div></td></tr>
<tr><th>Last signature update</th><td id="f-sig">{{.LastSignatureUpdate.Value}}<div class="source">source: {{.LastSignatureUpdate.Source}}</div></td></tr>
<tr><th>Last OS update</th><td id="f-os">{{.LastOSUpdate.Value}}<div class="source">source: {{.LastOSUpdate.Source}}</div></td></tr>
<tr><th>Pending security updates</th><td id="f-pending">{{.PendingSecurityUpdates.Value}}<div class="source">source: {{.PendingSecurityUpdates.Source}}</div></td></tr>
<tr><th>Lock state across the loss</th><td id="f-lock">{{range .LockSpans}}{{.State}} from {{.From.UTC.Format "2006-01-02 15:04:05.00 UTC"}} to {{.To.UTC.Format "2006-01-02 15:04:05.00 UTC"}}<br>{{end}}<div class="source">source: {{.LockState.Source}}</div></td></tr>
<tr><th>Devices affected</th><td id="f-count">{{.DevicesAffected.Value}}<div class="source">source: {{.DevicesAffected.Source}}</div></td></tr>
<tr><th>Other equipment affected</th><td id="f-other">{{.OtherEquipment.Value}}<div class="source">source: {{.OtherEquipment.Source}}</div></td></tr>
<tr><th>CJI compromised</th><td id="f-cji">{{or .CJICompromised "—"}}</td></tr>
<tr><th>PII compromised</th><td id="f-pii">{{or .PIICompromised "—"}}</td></tr>
<tr><th>Action plan</th><td id="f-plan">{{or .ActionPlan "—"}}</td></tr>
<tr><th>Re-image before reconnection</th><td id="f-reimage">{{or .Reimage "—"}}</td></tr>
<tr><th>Copies to the FBI CJIS ISO</th><td>{{with .FBICopySentAt}}sent {{human .}}{{else}}not yet sent{{end}}</td></tr>
{{with .EditedBy}}<tr><th>Filled in by</th><td>{{.}}{{with $.Checklist.EditedAt}}, last {{human .}}{{end}}</td></tr>{{end}}
</table>{{end}}{{end}}
`))

// human renders a form time (JSONTime) for people (HumanTime).
func human(s string) string {
	t, err := time.Parse(JSONTime, s)
	if err != nil {
		return s
	}
	return t.UTC().Format(HumanTime)
}

// WriteHTML renders the form as a standalone printable page.
func (f Form) WriteHTML(w io.Writer) error { return formHTML.Execute(w, f) }

// FormTemplate is the form's body, for pages that embed it (the console).
func FormTemplate() *template.Template { return formHTML.Lookup("form-body") }
