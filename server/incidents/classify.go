// Package incidents runs loss-of-control and loss incidents as the
// agency policy defines them ("CJI Related Incident Response Plan", mobile
// devices): each is classified at the 15-minute line by the worse of the
// lock state its reporter gave and the one the device's own telemetry
// shows, escalates by itself when it crosses the line, and keeps a
// timeline of every event and action for the LASO's response form.
package incidents

import (
	"fmt"
	"time"
)

// Kinds, as the policy lists them.
const (
	KindLossOfControl = "loss_of_control"
	KindTotalLoss     = "total_loss"
	KindCompromise    = "compromise"
)

// Lock states, ordered from best to worst.
const (
	LockLocked   = "locked"
	LockUnknown  = "unknown"
	LockUnlocked = "unlocked"
)

// Duration classes. The policy says minimal is "less than 15 minutes"
// and extended "longer than 15 minutes"; exactly 15:00 is neither, and we
// count it as extended, the safer side.
const (
	Minimal  = "minimal"
	Extended = "extended"
)

// Severities, ascending.
const (
	SeverityLow      = "low"
	SeverityModerate = "moderate"
	SeverityHigh     = "high"
	SeverityCritical = "critical"
)

var severityRank = map[string]int{SeverityLow: 0, SeverityModerate: 1, SeverityHigh: 2, SeverityCritical: 3}

// Settings are the agency's choices.
type Settings struct {
	// Line is where minimal ends (15 minutes).
	Line time.Duration
	// Momentary is how long an unlocked device may be out of sight before
	// it counts (60 seconds).
	Momentary time.Duration
}

// DefaultSettings are the policy's numbers.
var DefaultSettings = Settings{Line: 15 * time.Minute, Momentary: time.Minute}

// Facts are what an incident is classified from.
type Facts struct {
	Kind         string
	Started      time.Time
	Ended        *time.Time // nil while ongoing
	Now          time.Time  // the clock, for ongoing incidents
	LockReported string
	LockObserved string // from the device's lock timeline; "" when it has none
	OutsideUS    bool
}

// Class is the classification.
type Class struct {
	Duration      time.Duration
	DurationClass string
	LockState     string // the worse of reported and observed
	Contradiction string // set when telemetry and reporter disagree
	Category      string
	Severity      string
}

// Classify applies the policy. Categories for loss of control follow its
// list (locked + minimal; unknown + minimal; unknown + extended; unlocked
// + more than momentary) plus the two cases it leaves out but a LASO must
// still see: locked + extended, one step above locked + minimal, and
// unlocked for a moment, below everything else.
func Classify(f Facts, s Settings) Class {
	end := f.Now
	if f.Ended != nil {
		end = *f.Ended
	}
	c := Class{Duration: max(end.Sub(f.Started), 0)}
	c.DurationClass = Minimal
	if c.Duration >= s.Line {
		c.DurationClass = Extended
	}
	reported := normalLock(f.LockReported)
	c.LockState = reported
	if f.LockObserved != "" {
		observed := normalLock(f.LockObserved)
		if lockRank(observed) > lockRank(reported) {
			c.LockState = observed
		}
		if observed != reported && observed != LockUnknown {
			c.Contradiction = fmt.Sprintf("reported %s, but the device's telemetry shows %s during the loss", reported, observed)
		}
	}
	switch f.Kind {
	case KindTotalLoss:
		c.Category, c.Severity = "total_loss", SeverityCritical
	case KindCompromise:
		c.Category, c.Severity = "compromise", SeverityCritical
	default:
		switch c.LockState {
		case LockLocked:
			c.Category, c.Severity = "locked_minimal", SeverityLow
			if c.DurationClass == Extended {
				c.Category, c.Severity = "locked_extended", SeverityModerate
			}
		case LockUnknown:
			c.Category, c.Severity = "unknown_minimal", SeverityModerate
			if c.DurationClass == Extended {
				c.Category, c.Severity = "unknown_extended", SeverityHigh
			}
		default:
			c.Category, c.Severity = "unlocked_momentary", SeverityLow
			if c.Duration > s.Momentary {
				c.Category, c.Severity = "unlocked", SeverityHigh
				if c.DurationClass == Extended {
					c.Severity = SeverityCritical
				}
			}
		}
	}
	// Loss or compromise outside the United States is reported to the CSA
	// ISO as well: the highest severity.
	if f.OutsideUS {
		c.Severity = SeverityCritical
	}
	return c
}

func normalLock(s string) string {
	switch s {
	case LockLocked, LockUnlocked:
		return s
	}
	return LockUnknown
}

func lockRank(s string) int {
	switch s {
	case LockLocked:
		return 0
	case LockUnknown:
		return 1
	}
	return 2
}

// Worse reports whether severity a is above b.
func Worse(a, b string) bool { return severityRank[a] > severityRank[b] }
