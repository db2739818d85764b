package windows

import (
	"errors"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/protocol"
)

// TestEveryGapExplained: when every command fails and every registry read
// errs, each section still says why each value is missing.
func TestEveryGapExplained(t *testing.T) {
	failed := Output{Err: errors.New("exit status 1"), Stderr: []byte("Access is denied.")}
	regErr := Value[uint64]{Err: "access denied"}
	keyErr := Key{Err: "access denied"}
	p := protocol.Posture{
		Lock:       LockState(SessionInfoEx{}, false, "WTSQuerySessionInformationW"),
		LockPolicy: LockPolicy(LockPolicyInput{InactivityTimeoutSecs: regErr}, "registry"),
		Disk:       ParseBitLocker(failed, "C:"),
		Patch:      Patch(failed, failed, map[string]Key{"a": keyErr, "b": keyErr}, time.Now()),
		Bluetooth:  ParseBluetooth(failed),
		Hygiene:    Hygiene(HygieneInput{Antivirus: failed, Defender: failed, Firewall: failed, SecureBoot: regErr}),
	}
	if gaps := p.Unexplained(); len(gaps) > 0 {
		t.Fatalf("values missing without a reason: %v", gaps)
	}
}
