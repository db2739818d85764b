package posture

import (
	"context"
	"strings"
	"testing"

	"github.com/cordon-mdm/cordon/protocol"
)

// hostileNeighbour is a platform whose Bluetooth peer named itself with
// a NUL, an escape and a run of bytes that are not UTF-8 (one "?"), and whose disk reason
// quotes a tool's garbled output at length.
type hostileNeighbour struct{ unsupported }

func (hostileNeighbour) identity(context.Context) protocol.OSIdentity {
	return protocol.OSIdentity{Name: "Debian GNU/Linux\x1b[2J"}
}

func (hostileNeighbour) bluetooth(context.Context) *protocol.Bluetooth {
	b := &protocol.Bluetooth{Devices: []protocol.BluetoothDevice{{Address: "11:22:33:44:55:66", Name: "Head\x00set \xff\xfe", Paired: true}}}
	b.SetUnknown("powered", "adapter said \x07"+strings.Repeat("é", 400))
	return b
}

// TestReportsPassTheServersTextRule: whatever the system and its
// neighbours put in a report's texts, the report the agent sends passes
// the server's check, so no one can get a device's reports refused by
// naming a Bluetooth device; the texts keep what is printable.
func TestReportsPassTheServersTextRule(t *testing.T) {
	s := NewSystem("test", withPlatform(hostileNeighbour{unsupported{reason: "test"}}))
	p, err := s.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	p.OS.Platform = "linux/amd64"
	if err := p.Check(); err != nil {
		t.Fatalf("the server would refuse this report: %v", err)
	}
	if got := p.Bluetooth.Devices[0].Name; got != "Head?set ?" {
		t.Errorf("peer name %q", got)
	}
	if got := p.OS.Name; got != "Debian GNU/Linux?[2J" {
		t.Errorf("os name %q", got)
	}
	if r := p.Bluetooth.Unknown["powered"]; len(r) > protocol.MaxPostureText || !strings.HasPrefix(r, "adapter said ?é") {
		t.Errorf("reason %d bytes: %q", len(r), r[:20])
	}
}
