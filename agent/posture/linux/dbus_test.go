package linux

import (
	"context"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/cordon-mdm/cordon/internal/dbustest"
	"github.com/cordon-mdm/cordon/protocol"
)

const mockIface = "org.freedesktop.DBus.Mock"

func TestLogindLockAndIdle(t *testing.T) {
	bus := dbustest.Start(t)
	conn, err := dbus.ConnectSystemBus()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := context.Background()
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

	// Before logind exists the reading is unknown, with the reason.
	l := Lock(ctx, conn, now)
	if l.State != protocol.LockUnknown || l.Unknown["state"] == "" {
		t.Fatalf("without logind: %+v", l)
	}

	bus.Mock(t, "logind", login1Dest)
	l = Lock(ctx, conn, now)
	if l.State != protocol.LockUnknown || l.Unknown["state"] == "" {
		t.Fatalf("logind without sessions: %+v", l)
	}
	var path dbus.ObjectPath
	if err := bus.Call(t, login1Dest, login1Path, mockIface+".AddSession", "c1", "seat0", uint32(1000), "officer", true).Store(&path); err != nil {
		t.Fatal(err)
	}
	sess, err := ActiveSession(ctx, conn)
	if err != nil || sess.Path != path || sess.User != "officer" || sess.UID != 1000 {
		t.Fatalf("active session %+v, %v", sess, err)
	}

	l = Lock(ctx, conn, now)
	if l.State != protocol.LockUnlocked || l.IdleSeconds == nil || *l.IdleSeconds != 0 {
		t.Fatalf("fresh session: %+v", l)
	}

	// Watch, then lock: the change must be signalled, not polled.
	changes := make(chan struct{}, 8)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go WatchLock(wctx, conn, func() { changes <- struct{}{} })
	time.Sleep(200 * time.Millisecond) // let the match rule land
	bus.Call(t, login1Dest, path, sessionIface+".SetLockedHint", true)
	select {
	case <-changes:
	case <-time.After(5 * time.Second):
		t.Fatal("no lock change signalled")
	}
	idleSince := now.Add(-90 * time.Second)
	bus.Call(t, login1Dest, path, mockIface+".UpdateProperties", sessionIface, map[string]dbus.Variant{
		"IdleHint": dbus.MakeVariant(true), "IdleSinceHint": dbus.MakeVariant(uint64(idleSince.UnixMicro()))})
	l = Lock(ctx, conn, now)
	if l.State != protocol.LockLocked {
		t.Fatalf("after SetLockedHint(true): %+v", l)
	}
	if l.IdleSeconds == nil || *l.IdleSeconds != 90 || l.IdleSince == nil || !l.IdleSince.Equal(idleSince) {
		t.Fatalf("idle: %+v", l)
	}
	// Idle without a timestamp is reported as unknown, not as zero.
	bus.Call(t, login1Dest, path, mockIface+".UpdateProperties", sessionIface, map[string]dbus.Variant{
		"IdleSinceHint": dbus.MakeVariant(uint64(0))})
	if l = Lock(ctx, conn, now); l.IdleSeconds != nil || l.Unknown["idle_seconds"] == "" {
		t.Fatalf("idle without IdleSinceHint: %+v", l)
	}
	bus.Call(t, login1Dest, path, sessionIface+".SetLockedHint", false)
	if l = Lock(ctx, conn, now); l.State != protocol.LockUnlocked {
		t.Fatalf("after SetLockedHint(false): %+v", l)
	}
}

func TestBlueZAdapterAndDevices(t *testing.T) {
	bus := dbustest.Start(t)
	conn, err := dbus.ConnectSystemBus()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := context.Background()
	if b := Bluetooth(ctx, conn); b.Present != nil || b.Unknown["present"] == "" {
		t.Fatalf("without bluetoothd: %+v", b)
	}
	bus.Mock(t, "bluez5", bluezDest)
	b := Bluetooth(ctx, conn)
	if b.Present == nil || *b.Present || len(b.Devices) != 0 {
		t.Fatalf("no adapter: %+v", b)
	}

	bus.Call(t, bluezDest, "/", "org.bluez.Mock.AddAdapter", "hci0", "cruiser-12")
	bus.Call(t, bluezDest, "/", "org.bluez.Mock.AddDevice", "hci0", "11:22:33:44:55:66", "Radio Headset")
	bus.Call(t, bluezDest, "/", "org.bluez.Mock.PairDevice", "hci0", "11:22:33:44:55:66", uint32(0x240404))
	bus.Call(t, bluezDest, "/", "org.bluez.Mock.ConnectDevice", "hci0", "11:22:33:44:55:66")
	bus.Call(t, bluezDest, "/", "org.bluez.Mock.AddDevice", "hci0", "AA:BB:CC:DD:EE:FF", "Unknown Keyboard")
	bus.Call(t, bluezDest, "/", "org.bluez.Mock.BlockDevice", "hci0", "AA:BB:CC:DD:EE:FF")

	b = Bluetooth(ctx, conn)
	if b.Present == nil || !*b.Present || b.Powered == nil || !*b.Powered || b.Adapter == "" {
		t.Fatalf("adapter: %+v", b)
	}
	want := map[string]protocol.BluetoothDevice{
		"11:22:33:44:55:66": {Address: "11:22:33:44:55:66", Name: "Radio Headset", Paired: true, Connected: true},
		"AA:BB:CC:DD:EE:FF": {Address: "AA:BB:CC:DD:EE:FF", Name: "Unknown Keyboard", Blocked: true},
	}
	if len(b.Devices) != len(want) {
		t.Fatalf("devices: %+v", b.Devices)
	}
	for _, d := range b.Devices {
		w := want[d.Address]
		if d.Name != w.Name || d.Paired != w.Paired || d.Connected != w.Connected || d.Blocked != w.Blocked {
			t.Errorf("device %s: got %+v, want %+v", d.Address, d, w)
		}
	}

	// A powered-off radio is reported as such.
	bus.Call(t, bluezDest, "/org/bluez/hci0", "org.freedesktop.DBus.Properties.Set", adapterIface, "Powered", dbus.MakeVariant(false))
	if b = Bluetooth(ctx, conn); b.Powered == nil || *b.Powered {
		t.Fatalf("powered off: %+v", b)
	}
}
