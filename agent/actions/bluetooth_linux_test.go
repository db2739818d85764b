//go:build linux && !android

package actions

import (
	"context"
	"strings"
	"testing"

	"github.com/godbus/dbus/v5"

	"github.com/cordon-mdm/cordon/internal/dbustest"
)

func TestBluetoothBlock(t *testing.T) {
	bus := dbustest.Start(t)
	e := New(WipeConfig{}, WithBus(func() (*dbus.Conn, error) { return bus.Conn, nil }))
	ctx := context.Background()
	if out := e.BluetoothBlock(ctx, "11:22:33:44:55:66"); out.Done || !strings.Contains(out.Message, "GetManagedObjects") {
		t.Fatalf("without bluetoothd: %+v", out)
	}

	bus.Mock(t, "bluez5", bluezDest)
	bus.Call(t, bluezDest, "/", "org.bluez.Mock.AddAdapter", "hci0", "cruiser-12")
	bus.Call(t, bluezDest, "/", "org.bluez.Mock.AddDevice", "hci0", "11:22:33:44:55:66", "Radio Headset")
	bus.Call(t, bluezDest, "/", "org.bluez.Mock.PairDevice", "hci0", "11:22:33:44:55:66", uint32(0x240404))
	bus.Call(t, bluezDest, "/", "org.bluez.Mock.ConnectDevice", "hci0", "11:22:33:44:55:66")
	bus.Call(t, bluezDest, "/", "org.bluez.Mock.AddDevice", "hci0", "AA:BB:CC:DD:EE:FF", "Unknown Keyboard")

	// A peer that is known but not connected: the block is all it takes.
	out := e.BluetoothBlock(ctx, "aa-bb-cc-dd-ee-ff")
	if !out.Done || out.Detail["blocked"] != "true" || out.Detail["connected"] != "false" || out.Detail["address"] != "AA:BB:CC:DD:EE:FF" {
		t.Fatalf("idle peer: %+v", out)
	}

	// dbusmock's ConnectDevice sets the Connected property without the
	// state its Device1.Disconnect checks, so Disconnect answers
	// NotConnected and its Blocked=true does not drop the link the way
	// bluetoothd would: Connected keeps reading true. The executor must
	// report exactly that rather than trust the calls that returned.
	out = e.BluetoothBlock(ctx, "11:22:33:44:55:66")
	if out.Done || out.Detail["blocked"] != "true" || out.Detail["connected"] != "true" ||
		!strings.Contains(out.Message, "blocked=true connected=true") {
		t.Fatalf("connected peer: %+v", out)
	}

	out = e.BluetoothBlock(ctx, "00:00:00:00:00:01")
	if out.Done || out.Message != "no Bluetooth device with address 00:00:00:00:00:01 is known to BlueZ" {
		t.Fatalf("unknown peer: %+v", out)
	}
	if out = e.BluetoothBlock(ctx, "11:22:33:44:55"); out.Done || !strings.Contains(out.Message, "not a Bluetooth address") {
		t.Fatalf("bad address: %+v", out)
	}
}

func TestNormalizeAddress(t *testing.T) {
	for in, want := range map[string]string{
		"aa:bb:cc:dd:ee:ff": "AA:BB:CC:DD:EE:FF", "AA-BB-CC-DD-EE-FF": "AA:BB:CC:DD:EE:FF",
		"aabbccddeeff": "AA:BB:CC:DD:EE:FF", " 00:11:22:33:44:55 ": "00:11:22:33:44:55",
	} {
		if got, err := NormalizeAddress(in); err != nil || got != want {
			t.Errorf("%q: got %q, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "aa:bb:cc:dd:ee", "gg:bb:cc:dd:ee:ff", "+abbccddeeff", "aa:bb:cc:dd:ee:ff:00"} {
		if _, err := NormalizeAddress(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
