package incidents

import (
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"

	"github.com/cordon-mdm/cordon/server/store"
)

// Form is the IT Security Incident Response Form (CJIS Security Policy,
// Appendix F) as the LASO hands it to the CSA ISO, filled from the
// incident and its timeline.
type Form struct {
	IncidentID        string   `json:"incident_id"`
	DateOfReport      string   `json:"date_of_report"`
	DateOfIncident    string   `json:"date_of_incident"`
	IncidentEnded     string   `json:"incident_ended"`
	PointsOfContact   []string `json:"points_of_contact"`
	Location          string   `json:"location"`
	OutsideUS         bool     `json:"outside_united_states"`
	SystemsAffected   []string `json:"systems_affected"`
	MethodOfDetection string   `json:"method_of_detection"`
	Nature            string   `json:"nature_of_incident"`
	Description       string   `json:"description"`
	ActionsTaken      []string `json:"actions_taken"`
	Resolution        string   `json:"resolution"`
	Status            string   `json:"status"`
}

// BuildForm fills the form.
func BuildForm(inc *store.Incident, dev *store.Device, timeline []store.IncidentEvent) Form {
	ts := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	f := Form{IncidentID: inc.ID, DateOfReport: ts(inc.CreatedAt), DateOfIncident: ts(inc.StartedAt),
		Location: inc.Location, OutsideUS: inc.OutsideUS, Description: inc.Description, Status: inc.Status,
		Resolution: inc.Disposition}
	if inc.EndedAt != nil {
		f.IncidentEnded = ts(*inc.EndedAt)
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
	return f
}

var formHTML = template.Must(template.New("form").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>IT Security Incident Response Form — {{.IncidentID}}</title>
<style>body{font-family:serif;max-width:48em;margin:2em auto}th{text-align:left;vertical-align:top;width:14em}td,th{border-bottom:1px solid #999;padding:.4em}</style>
</head><body>
<h1>IT Security Incident Response Form</h1>
<table>
<tr><th>Incident</th><td>{{.IncidentID}} ({{.Status}})</td></tr>
<tr><th>Date of report</th><td>{{.DateOfReport}}</td></tr>
<tr><th>Date of incident</th><td>{{.DateOfIncident}}{{if .IncidentEnded}} to {{.IncidentEnded}}{{else}} (ongoing){{end}}</td></tr>
<tr><th>Points of contact</th><td>{{range .PointsOfContact}}{{.}}<br>{{end}}</td></tr>
<tr><th>Location</th><td>{{.Location}}{{if .OutsideUS}} — outside the United States{{end}}</td></tr>
<tr><th>Systems affected</th><td>{{range .SystemsAffected}}{{.}}<br>{{end}}</td></tr>
<tr><th>Method of detection</th><td>{{.MethodOfDetection}}</td></tr>
<tr><th>Nature of incident</th><td>{{.Nature}}</td></tr>
<tr><th>Description</th><td>{{.Description}}</td></tr>
<tr><th>Actions taken</th><td>{{range .ActionsTaken}}{{.}}<br>{{end}}</td></tr>
<tr><th>Resolution</th><td>{{.Resolution}}</td></tr>
</table></body></html>
`))

// WriteHTML renders the form as a printable page.
func (f Form) WriteHTML(w io.Writer) error { return formHTML.Execute(w, f) }
