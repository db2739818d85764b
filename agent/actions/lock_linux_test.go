//go:build linux && !android

package actions

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/cordon-mdm/cordon/internal/dbustest"
	"github.com/cordon-mdm/cordon/protocol"
)

const mockIface = "org.freedesktop.DBus.Mock"

func addSession(t *testing.T, bus *dbustest.Bus) dbus.ObjectPath {
	t.Helper()
	bus.Mock(t, "logind", login1Dest)
	var path dbus.ObjectPath
	if err := bus.Call(t, login1Dest, login1Path, mockIface+".AddSession", "c1", "seat0", uint32(1000), "officer", true).Store(&path); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLockWaitsForTheScreenLocker(t *testing.T) {
	bus := dbustest.Start(t)
	path := addSession(t, bus)

	// The mock's Session.Lock only emits the Lock signal, as logind does;
	// this goroutine plays the desktop's screen locker, which answers it
	// by setting LockedHint once the screen is covered.
	locker, err := dbus.Connect(bus.Address)
	if err != nil {
		t.Fatal(err)
	}
	defer locker.Close()
	if err := locker.AddMatchSignal(dbus.WithMatchObjectPath(path), dbus.WithMatchInterface(sessionIface), dbus.WithMatchMember("Lock")); err != nil {
		t.Fatal(err)
	}
	sigs := make(chan *dbus.Signal, 4)
	locker.Signal(sigs)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case sig, ok := <-sigs:
				if !ok {
					return
				}
				if sig.Name == sessionIface+".Lock" && sig.Path == path {
					time.Sleep(300 * time.Millisecond) // a locker takes a moment to fade in
					locker.Object(login1Dest, path).Call(sessionIface+".SetLockedHint", 0, true)
				}
			}
		}
	}()

	// The default connection: dbustest points the system bus at the mock.
	out := New(WipeConfig{}).Lock(ctx)
	if !out.Done || out.Detail["lock_state"] != protocol.LockLocked || out.Detail["method"] != "Session.Lock" || out.Detail["session"] != string(path) {
		t.Fatalf("got %+v", out)
	}
}

func TestLockWithoutALockerIsNotDone(t *testing.T) {
	bus := dbustest.Start(t)
	addSession(t, bus)
	conn, err := dbus.Connect(bus.Address)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	e := New(WipeConfig{}, WithBus(func() (*dbus.Conn, error) { return conn, nil }), WithLockTimeout(500*time.Millisecond))
	start := time.Now()
	out := e.Lock(context.Background())
	if out.Done || out.Detail["lock_state"] != protocol.LockUnlocked ||
		out.Message != "lock requested but the session still reads unlocked after 500ms" {
		t.Fatalf("got %+v", out)
	}
	if d := time.Since(start); d < 500*time.Millisecond || d > 5*time.Second {
		t.Fatalf("waited %s for a 500ms timeout", d)
	}
	if !conn.Connected() {
		t.Fatal("the executor closed a connection it was lent")
	}
}

func TestLockWithoutLogind(t *testing.T) {
	bus := dbustest.Start(t)
	e := New(WipeConfig{}, WithBus(func() (*dbus.Conn, error) { return bus.Conn, nil }), WithLockTimeout(200*time.Millisecond))
	out := e.Lock(context.Background())
	if out.Done || !strings.Contains(out.Message, "logind refused to lock") || out.Detail["lock_state"] != protocol.LockUnknown {
		t.Fatalf("got %+v", out)
	}
}
