package console

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/auth"
	"github.com/cordon-mdm/cordon/server/commands"
	"github.com/cordon-mdm/cordon/server/compliance"
	"github.com/cordon-mdm/cordon/server/incidents"
	"github.com/cordon-mdm/cordon/server/store"
)

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
	Device   *store.Device
	State    compliance.State
	Posture  string
	Timeline []store.LockEvent
	Commands []store.Command
	// PINs are the PINs of a Mac's commands by command id, for the LASO
	// alone: what unlocks the Mac again.
	PINs      map[string]string
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
	if v.user.Role == auth.RoleLASO && d.Platform == "macos" {
		// The list leaves the frames out; a Mac's lock and wipe carry
		// their PIN in theirs.
		dv.PINs = map[string]string{}
		for _, cmd := range dv.Commands {
			if cmd.Kind != "lock" && cmd.Kind != "wipe" {
				continue
			}
			full, err := c.records.GetCommand(ctx, cmd.ID)
			if err != nil {
				c.fail(w, r, err)
				return
			}
			if pin := c.commands.Secret(full); pin != "" {
				dv.PINs[cmd.ID] = pin
			}
		}
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
