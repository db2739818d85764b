//go:build linux && !android

package actions

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/godbus/dbus/v5"
)

const (
	bluezDest   = "org.bluez"
	deviceIface = "org.bluez.Device1"
	propsIface  = "org.freedesktop.DBus.Properties"
)

// NormalizeAddress returns a Bluetooth address as BlueZ spells it,
// AA:BB:CC:DD:EE:FF, accepting lower case and "-" or no separators.
func NormalizeAddress(s string) (string, error) {
	hex := strings.NewReplacer(":", "", "-", "").Replace(strings.TrimSpace(s))
	if len(hex) != 12 {
		return "", fmt.Errorf("%q is not a Bluetooth address", s)
	}
	if _, err := strconv.ParseUint(hex, 16, 64); err != nil {
		return "", fmt.Errorf("%q is not a Bluetooth address", s)
	}
	hex = strings.ToUpper(hex)
	parts := make([]string, 6)
	for i := range parts {
		parts[i] = hex[2*i : 2*i+2]
	}
	return strings.Join(parts, ":"), nil
}

// BluetoothBlock sets the peer's Blocked property, which makes bluetoothd
// drop it and refuse it from then on (and survives reboots), then
// disconnects it in case the block did not. Done means both read back as
// wanted.
func (e *linuxExecutor) BluetoothBlock(ctx context.Context, address string) Outcome {
	addr, err := NormalizeAddress(address)
	if err != nil {
		return Outcome{Message: err.Error()}
	}
	conn, release, err := e.bus()
	if err != nil {
		return Outcome{Message: "no system D-Bus connection: " + err.Error()}
	}
	defer release()
	cctx, cancel := context.WithTimeout(ctx, callLimit)
	defer cancel()
	var objs map[dbus.ObjectPath]map[string]map[string]dbus.Variant
	if err := conn.Object(bluezDest, "/").CallWithContext(cctx, "org.freedesktop.DBus.ObjectManager.GetManagedObjects", 0).Store(&objs); err != nil {
		return Outcome{Message: "BlueZ GetManagedObjects: " + err.Error()}
	}
	// Every adapter that knows the peer gets the block: it could come
	// back through any radio.
	var paths []dbus.ObjectPath
	for p, ifaces := range objs {
		if d, ok := ifaces[deviceIface]; ok {
			if a, _ := d["Address"].Value().(string); strings.EqualFold(a, addr) {
				paths = append(paths, p)
			}
		}
	}
	if len(paths) == 0 {
		return Outcome{Message: fmt.Sprintf("no Bluetooth device with address %s is known to BlueZ", addr)}
	}
	detail := map[string]string{"address": addr}
	var problems []string
	blocked, connected := true, false
	for _, p := range paths {
		obj := conn.Object(bluezDest, p)
		if err := obj.CallWithContext(cctx, propsIface+".Set", 0, deviceIface, "Blocked", dbus.MakeVariant(true)).Err; err != nil {
			problems = append(problems, fmt.Sprintf("%s: set Blocked: %v", p, err))
		}
		if err := obj.CallWithContext(cctx, deviceIface+".Disconnect", 0).Err; err != nil && !isDBusError(err, "org.bluez.Error.NotConnected") {
			problems = append(problems, fmt.Sprintf("%s: Disconnect: %v", p, err))
		}
		b, errB := obj.GetProperty(deviceIface + ".Blocked")
		c, errC := obj.GetProperty(deviceIface + ".Connected")
		isBlocked, okB := b.Value().(bool)
		isConnected, okC := c.Value().(bool)
		if errB != nil || errC != nil || !okB || !okC {
			problems = append(problems, fmt.Sprintf("%s: cannot read Blocked/Connected back: %v", p, errors.Join(errB, errC)))
			blocked, connected = false, true
			continue
		}
		blocked = blocked && isBlocked
		connected = connected || isConnected
	}
	detail["blocked"] = strconv.FormatBool(blocked)
	detail["connected"] = strconv.FormatBool(connected)
	if blocked && !connected {
		return Outcome{Done: true, Message: fmt.Sprintf("%s blocked and disconnected", addr), Detail: detail}
	}
	msg := fmt.Sprintf("%s reads blocked=%t connected=%t after the block", addr, blocked, connected)
	if len(problems) > 0 {
		msg += ": " + strings.Join(problems, "; ")
	}
	return Outcome{Message: msg, Detail: detail}
}
