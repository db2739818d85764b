package console

import (
	"context"
	"net/http"

	"github.com/cordon-mdm/cordon/server/auth"
	"github.com/cordon-mdm/cordon/server/incidents"
	"github.com/cordon-mdm/cordon/server/store"
)

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
	// APNs warns about the push certificate (apns.go).
	APNs *apnsAlert
	// Versions is the fleet's agent version spread, per OS.
	Versions []store.VersionCount
}

// versionSpreader counts devices per OS and agent version
// (*store.Store); records without it show no spread.
type versionSpreader interface {
	AgentVersionSpread(ctx context.Context) ([]store.VersionCount, error)
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
		if i.Open() {
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
	if o.APNs, err = c.pushCertAlert(r.Context(), v); err != nil {
		c.fail(w, r, err)
		return
	}
	for _, i := range o.Incidents {
		if o.Reporting[i.ID].Overdue {
			o.Overdue = append(o.Overdue, i)
		}
	}
	if vs, ok := c.records.(versionSpreader); ok {
		if o.Versions, err = vs.AgentVersionSpread(r.Context()); err != nil {
			c.fail(w, r, err)
			return
		}
	}
	for _, q := range reqs {
		if q.Status == "pending" || q.Status == "endorsed" {
			o.PendingRequests++
		}
	}
	c.render(w, r, http.StatusOK, "overview", v, view{Title: "Overview", D: o})
}
