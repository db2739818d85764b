package linux

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/godbus/dbus/v5"

	"github.com/cordon-mdm/cordon/protocol"
)

const (
	bluezDest     = "org.bluez"
	adapterIface  = "org.bluez.Adapter1"
	deviceIface   = "org.bluez.Device1"
	objMgrIface   = "org.freedesktop.DBus.ObjectManager"
	bluezSource   = "BlueZ (org.bluez ObjectManager)"
	dbusNoService = "org.freedesktop.DBus.Error.ServiceUnknown"
)

// Bluetooth reads the adapters and every device BlueZ knows in one
// GetManagedObjects call.
func Bluetooth(ctx context.Context, conn *dbus.Conn) *protocol.Bluetooth {
	b := &protocol.Bluetooth{}
	b.Source = bluezSource
	if conn == nil {
		b.SetUnknown("present", "no system D-Bus connection")
		return b
	}
	ctx, cancel := context.WithTimeout(ctx, dbusCallLimit)
	defer cancel()
	var objs map[dbus.ObjectPath]map[string]map[string]dbus.Variant
	err := conn.Object(bluezDest, "/").CallWithContext(ctx, objMgrIface+".GetManagedObjects", 0).Store(&objs)
	if err != nil {
		var de dbus.Error
		if ok := asDBusError(err, &de); ok && de.Name == dbusNoService {
			// No bluetoothd: either no radio or the service is off; the
			// radio itself cannot be seen without it.
			b.SetUnknown("present", "bluetoothd is not running (org.bluez not on the system bus)")
			return b
		}
		b.SetUnknown("present", fmt.Sprintf("BlueZ GetManagedObjects: %v", err))
		return b
	}
	return bluetoothFromObjects(objs)
}

func asDBusError(err error, out *dbus.Error) bool {
	switch e := err.(type) {
	case dbus.Error:
		*out = e
		return true
	case *dbus.Error:
		*out = *e
		return true
	}
	return false
}

// bluetoothFromObjects interprets BlueZ's object tree. With several
// adapters the first powered one (by path) is reported as the adapter;
// devices of every adapter are listed, since a peer on any radio matters.
func bluetoothFromObjects(objs map[dbus.ObjectPath]map[string]map[string]dbus.Variant) *protocol.Bluetooth {
	b := &protocol.Bluetooth{}
	b.Source = bluezSource
	paths := make([]string, 0, len(objs))
	for p := range objs {
		paths = append(paths, string(p))
	}
	slices.Sort(paths)
	var adapters []string
	for _, p := range paths {
		ifaces := objs[dbus.ObjectPath(p)]
		if a, ok := ifaces[adapterIface]; ok {
			adapters = append(adapters, p)
			powered, _ := a["Powered"].Value().(bool)
			addr, _ := a["Address"].Value().(string)
			if b.Adapter == "" || (powered && (b.Powered == nil || !*b.Powered)) {
				b.Adapter = strings.ToUpper(addr)
				b.Powered = &powered
			}
		}
		if d, ok := ifaces[deviceIface]; ok && len(b.Devices) < protocol.MaxBluetoothDevices {
			dev := protocol.BluetoothDevice{}
			dev.Address, _ = d["Address"].Value().(string)
			dev.Address = strings.ToUpper(dev.Address)
			if dev.Address == "" {
				continue
			}
			if n, ok := d["Name"].Value().(string); ok {
				dev.Name = n
			} else {
				dev.Name, _ = d["Alias"].Value().(string)
			}
			dev.Class, _ = d["Class"].Value().(uint32)
			dev.Type, _ = d["Icon"].Value().(string)
			dev.Paired, _ = d["Paired"].Value().(bool)
			dev.Connected, _ = d["Connected"].Value().(bool)
			dev.Blocked, _ = d["Blocked"].Value().(bool)
			b.Devices = append(b.Devices, dev)
		}
	}
	present := len(adapters) > 0
	b.Present = &present
	if !present {
		b.SetUnknown("powered", "no Bluetooth adapter")
	}
	return b
}
