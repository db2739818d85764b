// Package dbustest runs a private D-Bus daemon with python3-dbusmock
// services (logind, BlueZ) for tests, so collectors are tested against
// the real protocol rather than fakes of our own.
package dbustest

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/cordon-mdm/cordon/internal/needs"
)

// python is Debian's interpreter, where python3-dbusmock installs; a
// python3 earlier on PATH (pyenv) does not see it.
const python = "/usr/bin/python3"

// Bus is a private bus that stands in for both the system and the
// session bus.
type Bus struct {
	Address string
	Conn    *dbus.Conn // a test client on the bus, for driving the mocks
}

// Start launches dbus-daemon and points DBUS_SYSTEM_BUS_ADDRESS and
// DBUS_SESSION_BUS_ADDRESS at it for the rest of the test. Missing tools
// skip the test, or fail it under CI=true.
func Start(t *testing.T) *Bus {
	t.Helper()
	needs.Tool(t, "dbus-daemon", "dbus")
	if err := exec.Command(python, "-c", "import dbusmock").Run(); err != nil {
		needs.Missing(t, "Debian package python3-dbusmock is missing")
	}
	cmd := exec.Command("dbus-daemon", "--session", "--nofork", "--print-address=1", "--nopidfile")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("dbus-daemon address: %v", err)
	}
	addr = strings.TrimSpace(addr)
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", addr)
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", addr)
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &Bus{Address: addr, Conn: conn}
}

// Mock starts `python3 -m dbusmock --template NAME` on the bus and waits
// until it owns its bus name.
func (b *Bus) Mock(t *testing.T, template, busName string) {
	t.Helper()
	cmd := exec.Command(python, "-m", "dbusmock", "--system", "--template", template)
	cmd.Env = append(os.Environ(), "DBUS_SYSTEM_BUS_ADDRESS="+b.Address)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		var has bool
		err := b.Conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.NameHasOwner", 0, busName).Store(&has)
		if err == nil && has {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("dbusmock %s never took %s", template, busName)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Call invokes a method and fails the test on error.
func (b *Bus) Call(t *testing.T, dest string, path dbus.ObjectPath, method string, args ...any) *dbus.Call {
	t.Helper()
	c := b.Conn.Object(dest, path).Call(method, 0, args...)
	if c.Err != nil {
		t.Fatalf("%s %s: %v", path, method, c.Err)
	}
	return c
}
