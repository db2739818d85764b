package posture

import (
	"context"
	"strings"
	"testing"

	"github.com/cordon-mdm/cordon/protocol"
)

// TestThisSystemExplainsEveryGap runs the real collector on the build host,
// whatever it has (no D-Bus, no Bluetooth, no LUKS): every missing value
// must come with its reason.
func TestThisSystemExplainsEveryGap(t *testing.T) {
	s := NewSystem("test")
	defer s.Close()
	p, err := s.Refresh(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if gaps := p.Unexplained(); len(gaps) > 0 {
		t.Fatalf("values missing without a reason: %v", gaps)
	}
}

func TestUnexplainedCatchesASilentGap(t *testing.T) {
	p := protocol.Posture{Disk: &protocol.DiskEncryption{State: protocol.DiskUnknown}, Patch: &protocol.PatchLevel{}}
	got := strings.Join(p.Unexplained(), " ")
	for _, want := range []string{"disk.state", "patch.pending_security", "patch.last_update", "patch.reboot_required"} {
		if !strings.Contains(got, want) {
			t.Errorf("%s not flagged: %s", want, got)
		}
	}
}
