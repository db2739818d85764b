package macos

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/cordon-mdm/cordon/protocol"
)

func TestParseBluetooth(t *testing.T) {
	tests := []struct {
		fixture string
		present bool
		powered *bool
		adapter string
		devices []protocol.BluetoothDevice
	}{
		{"bluetooth_sonoma.json", true, ptr(true), "BC:D0:74:22:43:D6", []protocol.BluetoothDevice{
			{Address: "70:F9:4A:7A:8B:CA", Name: "Reyes AirPods Pro", Type: "Headphones", Paired: true, Connected: true},
			{Address: "D1:02:5B:57:DB:18", Name: "MX Master 3S", Type: "Mouse", Paired: true, Connected: true},
			{Address: "74:15:F5:4E:D0:50", Name: "Patrol Car 14", Type: "Car Audio", Paired: true},
			{Address: "34:31:8F:69:35:42", Name: "iPhone", Paired: true},
		}},
		{"bluetooth_off_monterey.json", true, ptr(false), "80:A9:97:21:58:C1", []protocol.BluetoothDevice{
			{Address: "04:4B:ED:11:22:33", Name: "Magic Keyboard", Type: "Keyboard", Paired: true},
		}},
		{"bluetooth_bigsur.json", true, ptr(true), "F0:18:98:AA:BB:CC", []protocol.BluetoothDevice{
			{Address: "04:4B:ED:11:22:33", Name: "Magic Keyboard", Type: "Keyboard", Class: 0x2540, Paired: true, Connected: true},
			{Address: "50:C2:ED:AA:BB:CC", Name: "Jabra Evolve 65", Type: "Headset", Class: 0x240404, Paired: true},
		}},
		{"bluetooth_none.json", false, nil, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			b, err := ParseBluetooth(fixture(t, tt.fixture))
			if err != nil {
				t.Fatal(err)
			}
			if deref(b.Present) != tt.present || !eqPtr(b.Powered, tt.powered) || b.Adapter != tt.adapter {
				t.Errorf("present %v powered %v adapter %q", deref(b.Present), deref(b.Powered), b.Adapter)
			}
			if !reflect.DeepEqual(b.Devices, tt.devices) {
				t.Errorf("devices\n got %+v\nwant %+v", b.Devices, tt.devices)
			}
			if len(b.Unknown) != 0 {
				t.Errorf("unexpected Unknown %v", b.Unknown)
			}
			valid(t, protocol.Posture{Bluetooth: b})
		})
	}
}

func TestBluetoothUnreadable(t *testing.T) {
	tests := []struct {
		name    string
		o       Output
		unknown []string
	}{
		{"command fails", Output{Command: CmdBluetooth, Err: errors.New("signal: killed")}, []string{"present"}},
		{"not JSON", out(CmdBluetooth, []byte("Bluetooth:\n\n      Bluetooth Controller:\n")), []string{"present"}},
		{"truncated", out(CmdBluetooth, fixture(t, "bluetooth_sonoma.json")[:200]), []string{"present"}},
		{"other data type", out(CmdBluetooth, []byte(`{"SPUSBDataType":[]}`)), []string{"present"}},
		{"wrong shape", out(CmdBluetooth, []byte(`{"SPBluetoothDataType":{"controller_properties":{}}}`)), []string{"present"}},
		{"unknown schema", out(CmdBluetooth, []byte(`{"SPBluetoothDataType":[{"radio":{}}]}`)), []string{"present"}},
		{"controller without state or address", out(CmdBluetooth, []byte(`{"SPBluetoothDataType":[{"controller_properties":{"controller_address":"NULL"}}]}`)),
			[]string{"powered", "adapter"}},
		{"device without address", out(CmdBluetooth, []byte(`{"SPBluetoothDataType":[{"controller_properties":{"controller_address":"BC:D0:74:22:43:D6","controller_state":"attrib_on"},
			"device_not_connected":[{"Ghost":{"device_minorType":"Headphones"}},{"Bad":{"device_address":"zz:zz:zz:zz:zz:zz"}}]}]}`)), []string{"devices"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := Bluetooth(tt.o)
			hasUnknown(t, b.Provenance, tt.unknown...)
			if b.Present != nil && tt.unknown[0] == "present" {
				t.Errorf("present %v from unreadable output", *b.Present)
			}
			valid(t, protocol.Posture{Bluetooth: b})
		})
	}
}

func TestBluetoothTooManyDevices(t *testing.T) {
	var sb strings.Builder
	sb.WriteString(`{"SPBluetoothDataType":[{"controller_properties":{"controller_address":"BC:D0:74:22:43:D6","controller_state":"attrib_on"},"device_not_connected":[`)
	for i := 0; i < protocol.MaxBluetoothDevices+5; i++ {
		if i > 0 {
			sb.WriteString(",")
		}
		fmt.Fprintf(&sb, `{"dev%d":{"device_address":"00:00:00:00:%02X:%02X"}}`, i, i>>8, i&0xff)
	}
	sb.WriteString("]}]}")
	b := Bluetooth(out(CmdBluetooth, []byte(sb.String())))
	if len(b.Devices) != protocol.MaxBluetoothDevices {
		t.Errorf("%d devices", len(b.Devices))
	}
	hasUnknown(t, b.Provenance, "devices")
	valid(t, protocol.Posture{Bluetooth: b})
}

func TestNormalizeAddress(t *testing.T) {
	for in, want := range map[string]string{
		"aa-bb-cc-dd-ee-ff": "AA:BB:CC:DD:EE:FF", "AA:BB:CC:DD:EE:FF": "AA:BB:CC:DD:EE:FF", " 0a:0b:0c:0d:0e:0f ": "0A:0B:0C:0D:0E:0F",
		"NULL": "", "aa:bb:cc:dd:ee": "", "aabbccddeeff": "", "a:bb:cc:dd:ee:fff": "", "+a:bb:cc:dd:ee:ff": "",
	} {
		got, ok := normalizeAddress(in)
		if got != want || ok != (want != "") {
			t.Errorf("%q: got %q %v", in, got, ok)
		}
	}
}

func FuzzParseBluetooth(f *testing.F) {
	for _, s := range []string{"bluetooth_sonoma.json", "bluetooth_off_monterey.json", "bluetooth_bigsur.json", "bluetooth_none.json"} {
		b, err := readFixture(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"SPBluetoothDataType":[{"local_device_title":{"general_power":1},"device_title":{"x":{"device_addr":"00-00-00-00-00-00","device_classOfDevice":"0x"}}}]}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		b, err := ParseBluetooth(in)
		if err != nil {
			return
		}
		// Whatever parses must make a report the server accepts.
		valid(t, protocol.Posture{Bluetooth: b})
		for _, d := range b.Devices {
			if _, ok := normalizeAddress(d.Address); !ok || d.Address != strings.ToUpper(d.Address) {
				t.Errorf("address %q not normalised", d.Address)
			}
		}
	})
}
