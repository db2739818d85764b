package windows

import (
	"encoding/json"
	"regexp"
	"strings"

	"github.com/cordon-mdm/cordon/protocol"
)

// BluetoothSource names where ParseBluetooth's values come from.
const BluetoothSource = "Get-PnpDevice -Class Bluetooth"

type pnpDevice struct {
	FriendlyName string   `json:"FriendlyName"`
	InstanceID   string   `json:"InstanceId"`
	Status       string   `json:"Status"`
	Present      flexBool `json:"Present"`
}

// Peer addresses in instance IDs: BTHENUM\DEV_<addr>\... and
// BTHLE\DEV_<addr>\... for the device itself, and
// BTHENUM\{service}_...\7&...&0&<addr>_C00000000 for each of a classic
// device's services.
var (
	devAddr     = regexp.MustCompile(`(?i)^BTH(?:ENUM|LE)\\DEV_([0-9A-F]{12})(?:\\|$)`)
	serviceAddr = regexp.MustCompile(`(?i)^BTHENUM\\.*&([0-9A-F]{12})_C[0-9A-F]+$`)
)

// stackEnumerators are the PnP enumerators of the Bluetooth stack itself.
// A Bluetooth-class device enumerated by anything else (USB, PCI, ACPI,
// SDIO, UART...) is the radio; that holds for every vendor, where names
// vary ("Intel(R) Wireless Bluetooth(R)", "Realtek Bluetooth Adapter",
// "Qualcomm FastConnect 6900 Bluetooth").
var stackEnumerators = map[string]bool{
	"BTH": true, "BTHENUM": true, "BTHLE": true, "BTHLEDEVICE": true,
	"BTHHFENUM": true, "BTHMODEM": true, "ROOT": true, "SWD": true,
}

// ParseBluetooth reads the adapter and paired peers from Get-PnpDevice
// -Class Bluetooth | Select-Object FriendlyName,InstanceId,Status,Present
// | ConvertTo-Json.
//
// PnP lists only paired peers, so each is Paired. Connected is
// approximated by Status "OK" and Present; PnP keeps no connection state
// of its own. Powered is only known false (the radio disabled or
// failing): the on/off switch in Settings is the Radio Management API's
// and does not show in PnP.
func ParseBluetooth(o Output) *protocol.Bluetooth {
	b := &protocol.Bluetooth{}
	b.Source = BluetoothSource
	unknownAll := func(why string) *protocol.Bluetooth {
		for _, f := range []string{"present", "powered", "adapter", "devices"} {
			b.SetUnknown(f, why)
		}
		return b
	}
	if why := o.failure(BluetoothSource); why != "" {
		return unknownAll(why)
	}
	items, err := jsonList(o.Stdout)
	if err != nil {
		return unknownAll(clip("Get-PnpDevice output is not JSON: " + err.Error()))
	}
	var radios []pnpDevice
	index := map[string]int{}
	for _, it := range items {
		var d pnpDevice
		if err := json.Unmarshal(it, &d); err != nil {
			return unknownAll(clip("Get-PnpDevice output is not a device list: " + err.Error()))
		}
		id := strings.TrimSpace(d.InstanceID)
		enum, _, _ := strings.Cut(id, `\`)
		if id == "" {
			continue
		}
		if !stackEnumerators[strings.ToUpper(enum)] {
			radios = append(radios, d)
			continue
		}
		addr, isDevice := "", false
		if m := devAddr.FindStringSubmatch(id); m != nil {
			addr, isDevice = m[1], true
		} else if m := serviceAddr.FindStringSubmatch(id); m != nil {
			addr = m[1]
		} else {
			continue // a stack component: enumerator, RFCOMM, PAN
		}
		addr = colonAddr(addr)
		connected := strings.EqualFold(d.Status, "OK") && d.Present.set && d.Present.v
		i, seen := index[addr]
		if !seen {
			if len(b.Devices) >= protocol.MaxBluetoothDevices {
				continue
			}
			i = len(b.Devices)
			index[addr] = i
			b.Devices = append(b.Devices, protocol.BluetoothDevice{Address: addr, Paired: true})
		}
		dev := &b.Devices[i]
		dev.Connected = dev.Connected || connected
		// The device node's name is the peer's; a service node's is the
		// service's ("Hands-Free Audio"), kept only when nothing better.
		if name := clip(strings.TrimSpace(d.FriendlyName)); name != "" && (isDevice || dev.Name == "") {
			dev.Name = name
		}
	}
	// A radio that was unplugged stays listed with Present false.
	var radio *pnpDevice
	for i := range radios {
		if radio == nil || (radios[i].Present.set && radios[i].Present.v) {
			radio = &radios[i]
		}
	}
	b.SetUnknown("adapter", "PnP does not expose the radio's address")
	switch {
	case radio == nil:
		b.Present = boolPtr(false)
		b.Powered = boolPtr(false)
	case !radio.Present.set:
		b.SetUnknown("present", "radio "+clip(radio.FriendlyName)+" has no Present value: "+radio.Present.raw)
		b.SetUnknown("powered", "radio presence unknown")
	case !radio.Present.v:
		b.Present = boolPtr(false)
		b.Powered = boolPtr(false)
	default:
		b.Present = boolPtr(true)
		switch strings.ToUpper(radio.Status) {
		case "ERROR", "DEGRADED":
			// Disabled in Device Manager or its driver failed: the radio
			// cannot be on.
			b.Powered = boolPtr(false)
		default:
			b.SetUnknown("powered", clip("radio status "+radio.Status+"; the Settings on/off switch is not visible through PnP"))
		}
	}
	return b
}

func colonAddr(hex string) string {
	hex = strings.ToUpper(hex)
	var sb strings.Builder
	for i := 0; i < len(hex); i += 2 {
		if i > 0 {
			sb.WriteByte(':')
		}
		sb.WriteString(hex[i : i+2])
	}
	return sb.String()
}
