package integration

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/cordon-mdm/cordon/agent/localapi"
	"github.com/cordon-mdm/cordon/agent/tray"
	"github.com/cordon-mdm/cordon/internal/dbustest"
	"github.com/cordon-mdm/cordon/internal/testenv"
	"github.com/cordon-mdm/cordon/server"
)

// menuItem is one node of a com.canonical.dbusmenu layout.
type menuItem struct {
	ID       int32
	Props    map[string]dbus.Variant
	Children []menuItem
}

func (m menuItem) label() string {
	s, _ := m.Props["label"].Value().(string)
	return s
}

// decodeLayout turns the (ia{sv}av) structure godbus hands back into items.
func decodeLayout(v any) (menuItem, error) {
	f, ok := v.([]any)
	if !ok || len(f) != 3 {
		return menuItem{}, fmt.Errorf("bad layout node %#v", v)
	}
	m := menuItem{ID: f[0].(int32), Props: f[1].(map[string]dbus.Variant)}
	for _, k := range f[2].([]dbus.Variant) {
		c, err := decodeLayout(k.Value())
		if err != nil {
			return m, err
		}
		m.Children = append(m.Children, c)
	}
	return m, nil
}

func getLayout(t *testing.T, obj dbus.BusObject) []menuItem {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var rev uint32
	var root struct {
		ID       int32
		Props    map[string]dbus.Variant
		Children []dbus.Variant
	}
	if err := obj.CallWithContext(ctx, "com.canonical.dbusmenu.GetLayout", 0, int32(0), int32(-1), []string{}).Store(&rev, &root); err != nil {
		t.Fatalf("GetLayout: %v", err)
	}
	var items []menuItem
	for _, c := range root.Children {
		m, err := decodeLayout(c.Value())
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, m)
	}
	return items
}

// TestTrayReportsALostDevice drives the tray as a desktop would, over a
// private session bus: the menu is read with dbusmenu GetLayout, the
// report item is clicked with Event, the form the tray opens is filled in
// with an HTTP client, and the incident appears on the server for the
// device chosen, filed through the agent's channel by the device it ran on.
func TestTrayReportsALostDevice(t *testing.T) {
	bus := dbustest.Start(t)
	e := testenv.New(t, "")
	adm, err := server.OpenAdmin(context.Background(), e.DataDir, e.DSN)
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := adm.CreateToken(context.Background(), time.Hour, 2, "officer.lee@pd.example")
	adm.Close()
	if err != nil {
		t.Fatal(err)
	}
	laptopDir, err := e.Enroll(tok)
	if err != nil {
		t.Fatal(err)
	}
	phoneDir, err := e.Enroll(tok)
	if err != nil {
		t.Fatal(err)
	}
	laso := e.APIKey("laso")
	phoneID := e.StartAgent(phoneDir).DeviceID()
	waitOnline(t, e, laso, phoneID)
	laptop := e.StartAgent(laptopDir)
	waitOnline(t, e, laso, laptop.DeviceID())

	// The agent's local socket, as `cordon-agent run` serves it.
	sock := serveLocalAPI(t, e, laptop.Agent)
	ctx := context.Background()
	testenv.Eventually(t, 10*time.Second, "both of the owner's devices known to the agent", func() bool {
		st, err := localapi.Client{Socket: sock}.Status(ctx)
		return err == nil && len(st.Devices) == 2
	})

	// The tray, as the user's session runs it; the "browser" records the
	// URL it is asked to open.
	opened := filepath.Join(t.TempDir(), "opened")
	browser := filepath.Join(t.TempDir(), "browser")
	os.WriteFile(browser, []byte("#!/bin/sh\nprintf '%s' \"$1\" > "+opened+".tmp && mv "+opened+".tmp "+opened+"\n"), 0o700)
	cmd := exec.Command(buildBinary(t, "cordon-agent", ""), "tray", "--socket", sock, "--browser", browser)
	cmd.Env = append(os.Environ(), "DBUS_SESSION_BUS_ADDRESS="+bus.Address)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	name := fmt.Sprintf("org.kde.StatusNotifierItem-%d-1", cmd.Process.Pid)
	testenv.Eventually(t, 20*time.Second, "the tray on the session bus", func() bool {
		var has bool
		bus.Conn.BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, name).Store(&has)
		return has
	})
	menu := bus.Conn.Object(name, "/StatusNotifierItem/menu")

	// The menu says the device is connected, and how it complies: the
	// test agents report no disk or lock policy, which cjis-baseline
	// treats as unknown with no grace, so the device is quarantined.
	var report int32
	testenv.Eventually(t, 20*time.Second, "the status line and the report item", func() bool {
		report = 0
		status, bt := false, false
		for _, it := range getLayout(t, menu) {
			switch l := it.label(); {
			case l == "Quarantined: CJI access refused (connected)":
				status = it.Props["enabled"].Value() == false
			case l == tray.LabelReportLost:
				report = it.ID
			case l == tray.LabelBluetooth:
				bt = true
			}
		}
		return status && bt && report != 0
	})
	if err := menu.Call("com.canonical.dbusmenu.Event", 0, report, "clicked", dbus.MakeVariant(""), uint32(time.Now().Unix())).Err; err != nil {
		t.Fatalf("Event: %v", err)
	}
	var formURL string
	testenv.Eventually(t, 10*time.Second, "the tray opening the report form", func() bool {
		b, err := os.ReadFile(opened)
		formURL = string(b)
		return err == nil
	})
	u, err := url.Parse(formURL)
	if err != nil || u.Hostname() != "127.0.0.1" || u.Query().Get("mode") != tray.ModeLost {
		t.Fatalf("form URL %q", formURL)
	}
	secret := strings.Split(strings.Trim(u.Path, "/"), "/")[0]

	// The form lists the owner's devices.
	resp, err := http.Get(formURL)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), phoneID) || !strings.Contains(string(page), laptop.DeviceID()) {
		t.Fatalf("form %d does not list both devices:\n%s", resp.StatusCode, page)
	}

	// Without the per-launch secret, or with a wrong one, it refuses and
	// files nothing.
	fields := url.Values{"mode": {"lost"}, "device": {phoneID}, "kind": {"total_loss"}, "lock_state": {"unlocked"},
		"started": {time.Now().Add(-40 * time.Minute).Format("2006-01-02T15:04")}, "over": {"no"},
		"location": {"Precinct 4 parking lot"}, "description": {"phone taken from the patrol car"}}
	base := "http://" + u.Host
	for _, path := range []string{"/report", "/" + strings.Repeat("A", len(secret)) + "/report", "/report/" + secret} {
		r, err := http.PostForm(base+path, fields)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != http.StatusForbidden {
			t.Errorf("POST %s without the secret: %d, want 403", path, r.StatusCode)
		}
	}

	resp, err = http.PostForm(base+"/"+secret+"/report", fields)
	if err != nil {
		t.Fatal(err)
	}
	done, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(done), "Report filed") {
		t.Fatalf("submit: %d\n%s", resp.StatusCode, done)
	}
	var list struct {
		Incidents []struct {
			ID          string `json:"id"`
			DeviceID    string `json:"device_id"`
			Kind        string `json:"kind"`
			LockState   string `json:"lock_reported"`
			Location    string `json:"location"`
			Description string `json:"description"`
			Reporter    string `json:"reporter"`
			Severity    string `json:"severity"`
		} `json:"incidents"`
	}
	e.Do("GET", "/api/v1/incidents", laso, nil, &list)
	if len(list.Incidents) != 1 {
		t.Fatalf("%d incidents, want exactly the one filed with the secret", len(list.Incidents))
	}
	inc := list.Incidents[0]
	me, _ := user.Current()
	if inc.DeviceID != phoneID || inc.Kind != "total_loss" || inc.LockState != "unlocked" || inc.Location != "Precinct 4 parking lot" ||
		inc.Description != "phone taken from the patrol car" || inc.Severity != "critical" ||
		!strings.Contains(inc.Reporter, "via device:"+laptop.DeviceID()) || !strings.Contains(inc.Reporter, me.Username) {
		t.Fatalf("incident %+v", inc)
	}
	if !strings.Contains(string(done), inc.ID) {
		t.Errorf("the confirmation does not name incident %s", inc.ID)
	}
}
