package android

import (
	"testing"

	"github.com/cordon-mdm/cordon/protocol"
)

// TestEveryGapExplained: with no host app and no properties at all, each
// section still says why each value is missing.
func TestEveryGapExplained(t *testing.T) {
	var h *Host
	empty := PropsFromGetprop(nil, nil)
	p := protocol.Posture{Lock: h.Lock(), LockPolicy: h.LockPolicy(), Bluetooth: h.Bluetooth(),
		Disk: Disk(empty), Patch: Patch(empty), Hygiene: Hygiene(empty, nil)}
	if gaps := p.Unexplained(); len(gaps) > 0 {
		t.Fatalf("values missing without a reason: %v", gaps)
	}
	fresh := NewHost()
	p.Lock, p.LockPolicy, p.Bluetooth = fresh.Lock(), fresh.LockPolicy(), fresh.Bluetooth()
	if gaps := p.Unexplained(); len(gaps) > 0 {
		t.Fatalf("host that never reported: %v", gaps)
	}
}
