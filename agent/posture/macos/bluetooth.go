package macos

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/cordon-mdm/cordon/protocol"
)

// CmdBluetooth is the command whose output the bluetooth section reads.
const CmdBluetooth = "system_profiler SPBluetoothDataType -json"

// ParseBluetooth reads `system_profiler SPBluetoothDataType -json` in
// either of its schemas:
//
//   - before macOS 12: local_device_title {general_address,
//     general_power} and device_title, a list of {name: {device_addr,
//     device_isconnected, device_ispaired, ...}};
//   - macOS 12 and later: controller_properties {controller_address,
//     controller_state} and the lists device_connected and
//     device_not_connected of {name: {device_address, device_minorType,
//     ...}}. These lists hold only devices paired with the Mac, so a
//     device in them is paired unless it says otherwise.
//
// An empty SPBluetoothDataType means the Mac has no Bluetooth
// controller. Values it cannot read are recorded in the section's
// Unknown; only output that is not this report at all is an error.
func ParseBluetooth(out []byte) (*protocol.Bluetooth, error) {
	var doc map[string]any
	if err := json.Unmarshal(out, &doc); err != nil {
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	raw, ok := doc["SPBluetoothDataType"]
	if !ok {
		return nil, errors.New("no SPBluetoothDataType")
	}
	items, ok := raw.([]any)
	if !ok {
		return nil, fmt.Errorf("SPBluetoothDataType is %s, not a list", jsonType(raw))
	}
	b := &protocol.Bluetooth{}
	b.Source = CmdBluetooth
	if len(items) == 0 {
		b.Present = ptr(false)
		return b, nil
	}
	item, ok := items[0].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("SPBluetoothDataType[0] is %s, not an object", jsonType(items[0]))
	}

	ctrl, addrKey, powerKey := item["controller_properties"], "controller_address", "controller_state"
	if ctrl == nil {
		ctrl, addrKey, powerKey = item["local_device_title"], "general_address", "general_power"
	}
	c, ok := ctrl.(map[string]any)
	if !ok {
		// Neither schema's controller: say so rather than guess there is
		// no radio.
		b.SetUnknown("present", "no controller_properties or local_device_title in the output")
		return b, nil
	}
	b.Present = ptr(true)
	if on, ok := attrib(c[powerKey]); ok {
		b.Powered = ptr(on)
	} else {
		b.SetUnknown("powered", clip(fmt.Sprintf("%s is %v", powerKey, describe(c[powerKey]))))
	}
	if a, ok := normalizeAddress(c[addrKey]); ok {
		b.Adapter = a
	} else {
		b.SetUnknown("adapter", clip(fmt.Sprintf("%s is %v", addrKey, describe(c[addrKey]))))
	}

	var devs []protocol.BluetoothDevice
	var bad []string
	add := func(list any, connected *bool) {
		for _, d := range namedEntries(list) {
			dev, ok := device(d.name, d.props, connected)
			if !ok {
				bad = append(bad, d.name)
				continue
			}
			devs = append(devs, dev)
		}
	}
	add(item["device_title"], nil)           // before macOS 12
	add(item["devices_list"], nil)           // early macOS 12 releases
	add(item["device_connected"], ptr(true)) // macOS 12 and later
	add(item["device_not_connected"], ptr(false))

	var why []string
	if len(devs) > protocol.MaxBluetoothDevices {
		why = append(why, fmt.Sprintf("%d devices listed; only the first %d are reported", len(devs), protocol.MaxBluetoothDevices))
		devs = devs[:protocol.MaxBluetoothDevices]
	}
	if len(bad) > 0 {
		why = append(why, fmt.Sprintf("%d listed devices without a readable address: %s", len(bad), strings.Join(bad, ", ")))
	}
	if len(why) > 0 {
		b.SetUnknown("devices", clip(strings.Join(why, "; ")))
	}
	b.Devices = devs
	return b, nil
}

type named struct {
	name  string
	props map[string]any
}

// namedEntries flattens system_profiler's lists of one-key objects
// ([{"AirPods": {...}}, ...]); an object of several names is read too,
// in name order, since some releases wrote device_title that way.
func namedEntries(v any) []named {
	var out []named
	addObj := func(m map[string]any) {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if p, ok := m[k].(map[string]any); ok {
				out = append(out, named{k, p})
			}
		}
	}
	switch t := v.(type) {
	case []any:
		for _, e := range t {
			if m, ok := e.(map[string]any); ok {
				addObj(m)
			}
		}
	case map[string]any:
		addObj(t)
	}
	return out
}

func device(name string, p map[string]any, connected *bool) (protocol.BluetoothDevice, bool) {
	addr, ok := normalizeAddress(first(p, "device_address", "device_addr"))
	if !ok {
		return protocol.BluetoothDevice{}, false
	}
	d := protocol.BluetoothDevice{Address: addr, Name: clip(name)}
	for _, k := range []string{"device_minorType", "device_minorClassOfDevice_string", "device_majorType", "device_majorClassOfDevice_string"} {
		if s, ok := p[k].(string); ok && s != "" {
			d.Type = clip(s)
			break
		}
	}
	if connected != nil {
		d.Connected = *connected
		d.Paired = true
	}
	if v, ok := attrib(first(p, "device_isconnected", "device_connected")); ok {
		d.Connected = v
	}
	if v, ok := attrib(first(p, "device_ispaired", "device_paired")); ok {
		d.Paired = v
	}
	if s, ok := p["device_classOfDevice"].(string); ok {
		d.Class = classOfDevice(s)
	}
	return d, true
}

func first(p map[string]any, keys ...string) any {
	for _, k := range keys {
		if v, ok := p[k]; ok {
			return v
		}
	}
	return nil
}

// attrib reads system_profiler's localisable booleans: "attrib_on",
// "attrib_Yes", "attrib_off", "attrib_No" and their case variants.
func attrib(v any) (value, ok bool) {
	s, isStr := v.(string)
	if !isStr {
		return false, false
	}
	switch strings.ToLower(strings.TrimPrefix(strings.TrimPrefix(s, "attrib_"), "Attrib_")) {
	case "on", "yes", "true":
		return true, true
	case "off", "no", "false":
		return false, true
	}
	return false, false
}

// normalizeAddress turns "aa-bb-cc-dd-ee-ff" (before macOS 12) and
// "AA:BB:CC:DD:EE:FF" into the upper-case colon form.
func normalizeAddress(v any) (string, bool) {
	s, ok := v.(string)
	if !ok {
		return "", false
	}
	parts := strings.FieldsFunc(strings.TrimSpace(s), func(r rune) bool { return r == '-' || r == ':' })
	if len(parts) != 6 {
		return "", false
	}
	for i, p := range parts {
		if len(p) != 2 {
			return "", false
		}
		if _, err := strconv.ParseUint(p, 16, 8); err != nil {
			return "", false
		}
		parts[i] = strings.ToUpper(p)
	}
	return strings.Join(parts, ":"), true
}

// classOfDevice reads the 24-bit Class of Device, the last field of
// device_classOfDevice ("0x04 0x01 0x240404").
func classOfDevice(s string) uint32 {
	f := strings.Fields(s)
	if len(f) == 0 {
		return 0
	}
	h, ok := strings.CutPrefix(strings.ToLower(f[len(f)-1]), "0x")
	if !ok {
		return 0
	}
	n, err := strconv.ParseUint(h, 16, 24)
	if err != nil {
		return 0
	}
	return uint32(n)
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "an object"
	case []any:
		return "a list"
	case string:
		return "a string"
	case float64:
		return "a number"
	case bool:
		return "a boolean"
	}
	return fmt.Sprintf("%T", v)
}

func describe(v any) string {
	if s, ok := v.(string); ok {
		return strconv.Quote(s)
	}
	if v == nil {
		return "missing"
	}
	return jsonType(v)
}

// Bluetooth builds the bluetooth section from a run of system_profiler.
func Bluetooth(o Output) *protocol.Bluetooth {
	if r := o.failure(); r != "" {
		b := &protocol.Bluetooth{}
		b.Source = CmdBluetooth
		b.SetUnknown("present", r)
		return b
	}
	b, err := ParseBluetooth(o.Stdout)
	if err != nil {
		b = &protocol.Bluetooth{}
		b.Source = CmdBluetooth
		b.SetUnknown("present", clip(o.Command+": "+err.Error()))
	}
	return b
}
