package auth

import (
	"fmt"
	"time"

	"github.com/cordon-mdm/cordon/server/store"
)

// LockoutPolicy is the CJIS rule for consecutive failed sign-ins. Two
// versions of the policy disagree, so the agency picks:
//
//   - "v6" (CJIS Security Policy v5.9.5 and v6.0, the default): 5
//     consecutive failures within 15 minutes lock the account until an
//     it-admin unlocks it.
//   - "v5.8": 5 consecutive failures lock it for 10 minutes, or until an
//     it-admin unlocks it.
type LockoutPolicy struct {
	Rule      string
	Threshold int
	// Window: failures older than this no longer count (v6 only).
	Window time.Duration
	// Duration: how long a v5.8 lock lasts.
	Duration time.Duration
}

// Lockout returns the policy for a rule name.
func Lockout(rule string) (LockoutPolicy, error) {
	switch rule {
	case "", "v6":
		return LockoutPolicy{Rule: "v6", Threshold: 5, Window: 15 * time.Minute}, nil
	case "v5.8":
		return LockoutPolicy{Rule: "v5.8", Threshold: 5, Duration: 10 * time.Minute}, nil
	}
	return LockoutPolicy{}, fmt.Errorf("lockout rule %q: use v6 (admin release) or v5.8 (10 minutes)", rule)
}

// Locked reports whether u may not sign in at now. An expired v5.8 lock
// reports expired, so the caller clears it.
func (p LockoutPolicy) Locked(u *store.User, now time.Time) (locked, expired bool) {
	if u.LockedAt == nil {
		return false, false
	}
	if p.Duration > 0 && !now.Before(u.LockedAt.Add(p.Duration)) {
		return false, true
	}
	return true, false
}

// WindowStart is the earliest failure that still counts at now (nil when
// failures never age out).
func (p LockoutPolicy) WindowStart(now time.Time) *time.Time {
	if p.Window == 0 {
		return nil
	}
	t := now.Add(-p.Window)
	return &t
}
