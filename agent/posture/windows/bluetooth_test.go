package windows

import (
	"testing"

	"github.com/cordon-mdm/cordon/protocol"
)

func TestParseBluetooth(t *testing.T) {
	b := ParseBluetooth(Output{Stdout: fixture(t, "pnp_bluetooth.json")})
	want := []protocol.BluetoothDevice{
		{Address: "38:18:4C:1A:2B:3C", Name: "WH-1000XM4", Paired: true, Connected: true},
		{Address: "00:1A:7D:DA:71:13", Name: "Avantree Headset", Paired: true},
		{Address: "D4:A1:B2:C3:D4:E5", Name: "Logitech MX Master 3", Paired: true, Connected: true},
		{Address: "AA:BB:CC:DD:EE:FF", Name: "Old Phone", Paired: true},
	}
	if len(b.Devices) != len(want) {
		t.Fatalf("devices %+v", b.Devices)
	}
	for i := range want {
		if b.Devices[i] != want[i] {
			t.Errorf("device %d: %+v, want %+v", i, b.Devices[i], want[i])
		}
	}
	if !eqPtr(b.Present, boolPtr(true)) || b.Powered != nil || b.Unknown["powered"] == "" || b.Unknown["adapter"] == "" {
		t.Fatalf("present %v powered %v unknown %v", deref(b.Present), deref(b.Powered), b.Unknown)
	}
	checkReport(t, protocol.Posture{Bluetooth: b})

	cases := []struct {
		name             string
		out              Output
		present, powered *bool
		devices          int
		unknown          []string
	}{
		{name: "disabled radio, single object", out: Output{Stdout: fixture(t, "pnp_bluetooth_radio_only.json")}, present: boolPtr(true), powered: boolPtr(false), unknown: []string{"adapter"}},
		{name: "no radio", out: Output{Stdout: []byte("[]")}, present: boolPtr(false), powered: boolPtr(false), unknown: []string{"adapter"}},
		{name: "unplugged dongle", out: Output{Stdout: []byte(`[{"FriendlyName":"Generic Bluetooth Radio","InstanceId":"USB\\VID_0A12&PID_0001\\6&1","Status":"Unknown","Present":false},` +
			`{"FriendlyName":"Phone","InstanceId":"BTHENUM\\Dev_001A7DDA7113\\7&1&0&BluetoothDevice_001A7DDA7113","Status":"Unknown","Present":false}]`)},
			present: boolPtr(false), powered: boolPtr(false), devices: 1, unknown: []string{"adapter"}},
		{name: "present as string", out: Output{Stdout: []byte(`{"FriendlyName":"Qualcomm FastConnect 6900 Bluetooth","InstanceId":"ACPI\\QCOM06B3\\2&DABA3FF&0","Status":"OK","Present":"True"}`)},
			present: boolPtr(true), unknown: []string{"adapter", "powered"}},
		{name: "present garbled", out: Output{Stdout: []byte(`{"FriendlyName":"Radio","InstanceId":"PCI\\VEN_8086","Status":"OK","Present":"maybe"}`)},
			unknown: []string{"adapter", "powered", "present"}},
		{name: "empty", out: Output{}, unknown: []string{"adapter", "powered", "present", "devices"}},
		{name: "failed", out: Output{Err: errExit1, Stderr: []byte("Get-PnpDevice : Access denied")}, unknown: []string{"adapter", "powered", "present", "devices"}},
		{name: "garbled", out: Output{Stdout: []byte("Status Class FriendlyName\r\n------ ----- ------------\r\nOK Bluetooth Intel")}, unknown: []string{"adapter", "powered", "present", "devices"}},
		{name: "not devices", out: Output{Stdout: []byte(`["a","b"]`)}, unknown: []string{"adapter", "powered", "present", "devices"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := ParseBluetooth(c.out)
			if !eqPtr(b.Present, c.present) || !eqPtr(b.Powered, c.powered) || len(b.Devices) != c.devices {
				t.Fatalf("present %v powered %v devices %+v", deref(b.Present), deref(b.Powered), b.Devices)
			}
			if len(b.Unknown) != len(c.unknown) {
				t.Fatalf("unknown %v, want %v", b.Unknown, c.unknown)
			}
			for _, f := range c.unknown {
				if b.Unknown[f] == "" {
					t.Fatalf("no reason for %s", f)
				}
			}
			checkReport(t, protocol.Posture{Bluetooth: b})
		})
	}
}

func FuzzParseBluetooth(f *testing.F) {
	f.Add(fixture(f, "pnp_bluetooth.json"))
	f.Add(fixture(f, "pnp_bluetooth_radio_only.json"))
	f.Add([]byte(`{"value":[{"InstanceId":"BTHLE\\DEV_001A7DDA7113\\x","Present":1}],"Count":1}`))
	f.Fuzz(func(t *testing.T, stdout []byte) {
		b := ParseBluetooth(Output{Stdout: stdout})
		if b.Present == nil && b.Unknown["present"] == "" {
			t.Fatal("presence neither read nor explained")
		}
		checkReport(t, protocol.Posture{Bluetooth: b})
	})
}
