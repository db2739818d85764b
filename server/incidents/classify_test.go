package incidents

import (
	"strings"
	"testing"
	"time"
)

func TestClassify(t *testing.T) {
	start := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { e := start.Add(d); return &e }
	for _, c := range []struct {
		name                   string
		f                      Facts
		class, category, sever string
		contradiction          bool
	}{
		{"locked, 14:59", Facts{Kind: KindLossOfControl, LockReported: LockLocked, Ended: at(14*time.Minute + 59*time.Second)}, Minimal, "locked_minimal", SeverityLow, false},
		{"locked, 15:00", Facts{Kind: KindLossOfControl, LockReported: LockLocked, Ended: at(15 * time.Minute)}, Extended, "locked_extended", SeverityModerate, false},
		{"locked, 15:01", Facts{Kind: KindLossOfControl, LockReported: LockLocked, Ended: at(15*time.Minute + time.Second)}, Extended, "locked_extended", SeverityModerate, false},
		{"unknown, minimal", Facts{Kind: KindLossOfControl, LockReported: LockUnknown, Ended: at(5 * time.Minute)}, Minimal, "unknown_minimal", SeverityModerate, false},
		{"unknown, 14:59", Facts{Kind: KindLossOfControl, LockReported: LockUnknown, Ended: at(14*time.Minute + 59*time.Second)}, Minimal, "unknown_minimal", SeverityModerate, false},
		{"unknown, 15:00", Facts{Kind: KindLossOfControl, LockReported: LockUnknown, Ended: at(15 * time.Minute)}, Extended, "unknown_extended", SeverityHigh, false},
		{"unlocked, 59 s", Facts{Kind: KindLossOfControl, LockReported: LockUnlocked, Ended: at(59 * time.Second)}, Minimal, "unlocked_momentary", SeverityLow, false},
		{"unlocked, 61 s", Facts{Kind: KindLossOfControl, LockReported: LockUnlocked, Ended: at(61 * time.Second)}, Minimal, "unlocked", SeverityHigh, false},
		{"unlocked, extended", Facts{Kind: KindLossOfControl, LockReported: LockUnlocked, Ended: at(20 * time.Minute)}, Extended, "unlocked", SeverityCritical, false},
		{"reported locked, observed unlocked", Facts{Kind: KindLossOfControl, LockReported: LockLocked, LockObserved: LockUnlocked, Ended: at(5 * time.Minute)}, Minimal, "unlocked", SeverityHigh, true},
		{"reported unlocked, observed locked", Facts{Kind: KindLossOfControl, LockReported: LockUnlocked, LockObserved: LockLocked, Ended: at(5 * time.Minute)}, Minimal, "unlocked", SeverityHigh, true},
		{"lock state not given", Facts{Kind: KindLossOfControl, Ended: at(time.Minute)}, Minimal, "unknown_minimal", SeverityModerate, false},
		{"ongoing, 14:59 by the clock", Facts{Kind: KindLossOfControl, LockReported: LockLocked, Now: start.Add(14*time.Minute + 59*time.Second)}, Minimal, "locked_minimal", SeverityLow, false},
		{"ongoing, 15:00 by the clock", Facts{Kind: KindLossOfControl, LockReported: LockLocked, Now: start.Add(15 * time.Minute)}, Extended, "locked_extended", SeverityModerate, false},
		{"total loss", Facts{Kind: KindTotalLoss, LockReported: LockLocked, Ended: at(time.Minute)}, Minimal, "total_loss", SeverityCritical, false},
		{"compromise", Facts{Kind: KindCompromise, LockReported: LockLocked, Ended: at(time.Minute)}, Minimal, "compromise", SeverityCritical, false},
		{"locked, minimal, outside the US", Facts{Kind: KindLossOfControl, LockReported: LockLocked, OutsideUS: true, Ended: at(time.Minute)}, Minimal, "locked_minimal", SeverityCritical, false},
	} {
		c.f.Started = start
		got := Classify(c.f, DefaultSettings)
		if got.DurationClass != c.class || got.Category != c.category || got.Severity != c.sever || (got.Contradiction != "") != c.contradiction {
			t.Errorf("%s: got %+v, want %s %s %s contradiction=%v", c.name, got, c.class, c.category, c.sever, c.contradiction)
		}
		if c.contradiction && !strings.Contains(got.Contradiction, "telemetry") {
			t.Errorf("%s: contradiction %q does not say where it comes from", c.name, got.Contradiction)
		}
	}
}
