package macos

import (
	"errors"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/protocol"
)

// TestEveryGapExplained: when every tool fails, each section still says
// why each value is missing.
func TestEveryGapExplained(t *testing.T) {
	failed := func(cmd string) Output { return Output{Command: cmd, Err: errors.New("exit status 1")} }
	p := protocol.Posture{
		Lock:       Lock(failed("ioreg -n Root"), failed("ioreg -c IOHIDSystem"), time.Now()),
		LockPolicy: LockPolicy(failed("sysadminctl"), failed("defaults"), failed("pmset -g")),
		Disk:       Disk(failed("fdesetup status")),
		Patch:      Patch(failed("sw_vers"), failed("softwareupdate -l"), failed("InstallHistory.plist"), time.Now()),
		Bluetooth:  Bluetooth(failed("system_profiler")),
		Hygiene:    Hygiene(failed("socketfilterfw"), failed("csrutil status"), errors.New("permission denied"), XProtectData{Tool: failed(CmdXProtectVersion)}),
	}
	if gaps := p.Unexplained(); len(gaps) > 0 {
		t.Fatalf("values missing without a reason: %v", gaps)
	}
}
