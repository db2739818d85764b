package console

import (
	"net/http"
	"strings"

	"github.com/cordon-mdm/cordon/server/compliance"
	"github.com/cordon-mdm/cordon/server/store"
)

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
