//go:build linux && !android

package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	"encoding/json"

	"github.com/godbus/dbus/v5"

	"github.com/cordon-mdm/cordon/agent"
	"github.com/cordon-mdm/cordon/agent/posture/linux"
	"github.com/cordon-mdm/cordon/internal/dbustest"
	"github.com/cordon-mdm/cordon/internal/testenv"
	"github.com/cordon-mdm/cordon/protocol"
)

// bluezPosture reads Bluetooth from BlueZ afresh on every collection.
type bluezPosture struct{ conn *dbus.Conn }

func (b bluezPosture) Collect(ctx context.Context) (protocol.Posture, error) {
	p, err := testenv.OSOnly{}.Collect(ctx)
	p.Bluetooth = linux.Bluetooth(ctx, b.conn)
	return p, err
}

type findingJSON struct {
	Control   string    `json:"control"`
	Subject   string    `json:"subject"`
	Message   string    `json:"message"`
	Action    string    `json:"action"`
	FirstSeen time.Time `json:"first_seen"`
}

// TestUnapprovedBluetoothPeerIsBlocked: a real agent reading BlueZ on a
// private bus. An unapproved peer connects → a finding within a second of
// the report → bluetooth_block delivered → the agent blocks it in BlueZ →
// the finding records the block; once IT approves the address the next
// report is compliant.
func TestUnapprovedBluetoothPeerIsBlocked(t *testing.T) {
	bus := dbustest.Start(t)
	bus.Mock(t, "bluez5", "org.bluez")
	bus.Call(t, "org.bluez", "/", "org.bluez.Mock.AddAdapter", "hci0", "cruiser-12")

	e := testenv.New(t, "")
	admin, laso := e.APIKey("it-admin"), e.APIKey("laso")
	// Only the Bluetooth control here: the other controls have their own
	// tests, and this host's disk or patches must not decide this one.
	if st := putRaw(t, e, admin, "/api/v1/profiles/bluetooth-only", "name: bluetooth-only\ncontrols:\n  bluetooth: {mode: allow-list, enforcement: enforce}\n"); st != 200 {
		t.Fatalf("profile: %d", st)
	}
	if st := e.Do("PUT", "/api/v1/groups/default", admin, map[string]string{"profile": "bluetooth-only"}, nil); st != 200 {
		t.Fatalf("group: %d", st)
	}
	conn, err := dbus.Connect(bus.Address)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	a := e.StartAgent(e.MustEnroll(), agent.WithCollector(bluezPosture{conn}), agent.WithPollInterval(100*time.Millisecond))
	dev := func() (st string, fs []findingJSON, posture protocol.Posture) {
		var d struct {
			Compliance string           `json:"compliance"`
			Findings   []findingJSON    `json:"findings"`
			Posture    protocol.Posture `json:"posture"`
		}
		e.Do("GET", "/api/v1/devices/"+a.DeviceID(), laso, nil, &d)
		return d.Compliance, d.Findings, d.Posture
	}
	testenv.Eventually(t, 10*time.Second, "compliant with no peers", func() bool { st, _, _ := dev(); return st == "compliant" })

	const peer = "11:22:33:44:55:66"
	bus.Call(t, "org.bluez", "/", "org.bluez.Mock.AddDevice", "hci0", peer, "Unknown Keyboard")
	bus.Call(t, "org.bluez", "/", "org.bluez.Mock.PairDevice", "hci0", peer, uint32(0x000540))
	// Device1.Connect, as a host connecting the peer would; dbusmock's
	// Mock.ConnectDevice sets only the property, which its Disconnect
	// does not see.
	devPath := dbus.ObjectPath("/org/bluez/hci0/dev_" + strings.ReplaceAll(peer, ":", "_"))
	bus.Call(t, "org.bluez", devPath, "org.bluez.Device1.Connect")

	var f findingJSON
	var reported time.Time
	testenv.Eventually(t, 10*time.Second, "a finding for the peer", func() bool {
		_, fs, p := dev()
		for _, x := range fs {
			if x.Control == "bluetooth.unapproved_peer" && x.Subject == peer {
				f, reported = x, p.CollectedAt
				return true
			}
		}
		return false
	})
	if lag := f.FirstSeen.Sub(reported); lag > time.Second || lag < -time.Second {
		t.Errorf("finding %v after the report; want within a second", lag)
	}
	testenv.Eventually(t, 15*time.Second, "the block in BlueZ and on the finding", func() bool {
		_, fs, _ := dev()
		for _, x := range fs {
			if x.Subject == peer && strings.HasPrefix(x.Action, "bluetooth_block command ") && strings.Contains(x.Message, "blocked on the device") {
				f = x
				return true
			}
		}
		return false
	})
	var blocked bool
	obj := conn.Object("org.bluez", devPath)
	if v, err := obj.GetProperty("org.bluez.Device1.Blocked"); err != nil || !v.Value().(bool) {
		t.Fatalf("BlueZ Blocked = %v, %v", v, err)
	} else {
		blocked = true
	}
	if v, err := obj.GetProperty("org.bluez.Device1.Connected"); err != nil || v.Value().(bool) {
		t.Fatalf("BlueZ Connected = %v, %v after the block", v, err)
	}
	cmdID := strings.TrimPrefix(f.Action, "bluetooth_block command ")
	var cmd struct {
		Status, Kind, Address string
		Result                json.RawMessage
	}
	e.Do("GET", "/api/v1/commands/"+cmdID, laso, nil, &cmd)
	if cmd.Status != "done" || cmd.Kind != "bluetooth_block" || !blocked {
		t.Fatalf("command %+v %s", cmd, cmd.Result)
	}
	if st, _, _ := dev(); st == "compliant" {
		t.Fatal("compliant with an unapproved peer still paired")
	}

	if st := e.Do("POST", "/api/v1/bluetooth/allowlist", admin, map[string]any{"address": peer, "name": "Unknown Keyboard",
		"scope": "device:" + a.DeviceID(), "reason": "evaluated by IT: department keyboard"}, nil); st != 201 {
		t.Fatalf("allow: %d", st)
	}
	a.ReportNow()
	testenv.Eventually(t, 10*time.Second, "compliant after approval", func() bool {
		st, fs, _ := dev()
		return st == "compliant" && len(fs) == 0
	})
	// The history keeps the finding, resolved, with its block.
	var hist struct {
		Findings []struct {
			Subject, Action string
			ResolvedAt      *string `json:"resolved_at"`
		} `json:"findings"`
	}
	e.Do("GET", "/api/v1/devices/"+a.DeviceID()+"/findings", laso, nil, &hist)
	resolved := false
	for _, h := range hist.Findings {
		if h.Subject == peer && h.ResolvedAt != nil && strings.HasPrefix(h.Action, "bluetooth_block command ") {
			resolved = true
		}
	}
	if !resolved {
		t.Fatalf("history %+v", hist.Findings)
	}
}
