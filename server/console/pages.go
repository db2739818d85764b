package console

import (
	"context"
	"net/http"

	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/status"
	"github.com/cordon-mdm/cordon/server/store"
)

// Each page group has its own file (overview.go, devices.go,
// incidents.go, bluetooth.go, audit.go, reviews.go, users.go); this one
// holds what they share: the flash messages, the redirect after an
// action, the refusal page and the device lists.

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
