package windows

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/cordon-mdm/cordon/protocol"
)

// ScreenSaver is one set of the screen saver values under a user's
// "Control Panel\Desktop" key, all REG_SZ.
type ScreenSaver struct {
	Active  Value[string] // ScreenSaveActive, "1" or "0"
	Secure  Value[string] // ScreenSaverIsSecure: lock on resume
	TimeOut Value[string] // ScreenSaveTimeOut, seconds
	Exe     Value[string] // SCRNSAVE.EXE: with none set, no screen saver ever starts
}

// LockPolicyInput is everything Windows consults to lock an idle session.
type LockPolicyInput struct {
	// InactivityTimeoutSecs is the machine inactivity limit, the DWORD at
	// HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Policies\System.
	InactivityTimeoutSecs Value[uint64]
	// User is HKEY_USERS\<console user>\Control Panel\Desktop; Policy is
	// ...\Software\Policies\Microsoft\Windows\Control Panel\Desktop, whose
	// values, where set, override the user's.
	User, Policy ScreenSaver
}

// mechanism is one way of locking: on with a timeout, off, or unknown.
type mechanism struct {
	on, known bool
	timeout   int64
	reason    string
}

// LockPolicy combines the machine inactivity limit and the screen saver:
// the session locks at whichever comes first.
func LockPolicy(in LockPolicyInput, source string) *protocol.LockPolicy {
	p := &protocol.LockPolicy{}
	p.Source = source
	machine := machineLimit(in.InactivityTimeoutSecs)
	saver := screenSaver(in.User, in.Policy)

	var reasons []string
	for _, m := range []mechanism{machine, saver} {
		if !m.known {
			reasons = append(reasons, m.reason)
		}
	}
	reason := strings.Join(reasons, "; ")
	switch {
	case machine.known && saver.known:
		on := machine.on || saver.on
		p.Enabled = &on
		var t int64
		for _, m := range []mechanism{machine, saver} {
			if m.on && (t == 0 || m.timeout < t) {
				t = m.timeout
			}
		}
		p.TimeoutSeconds = &t
	case machine.known && machine.on, saver.known && saver.on:
		// One mechanism locking settles Enabled, but the unknown one may
		// lock sooner.
		p.Enabled = boolPtr(true)
		p.SetUnknown("timeout_seconds", reason)
	default:
		p.SetUnknown("enabled", reason)
		p.SetUnknown("timeout_seconds", reason)
	}
	return p
}

func machineLimit(v Value[uint64]) mechanism {
	switch {
	case v.Err != "":
		return mechanism{reason: clip("machine inactivity limit unreadable: " + v.Err)}
	case !v.Present || v.V == 0:
		// Absent or zero is the documented "no limit".
		return mechanism{known: true}
	}
	return mechanism{known: true, on: true, timeout: int64(v.V)}
}

// effective is the policy value where one is set, else the user's.
func effective(user, policy Value[string], name string) (string, bool, string) {
	if policy.Err != "" {
		return "", false, clip(fmt.Sprintf("policy %s unreadable: %s", name, policy.Err))
	}
	if policy.Present {
		return strings.TrimSpace(policy.V), true, ""
	}
	if user.Err != "" {
		return "", false, clip(fmt.Sprintf("%s unreadable: %s", name, user.Err))
	}
	if user.Present {
		return strings.TrimSpace(user.V), true, ""
	}
	return "", true, ""
}

func screenSaver(user, policy ScreenSaver) mechanism {
	var reasons []string
	off := false
	flag := func(u, p Value[string], name string) {
		v, ok, why := effective(u, p, name)
		switch {
		case !ok:
			reasons = append(reasons, why)
		case v == "1":
		case v == "0" || v == "":
			off = true
		default:
			reasons = append(reasons, clip(fmt.Sprintf("%s is %q, not 0 or 1", name, v)))
		}
	}
	flag(user.Active, policy.Active, "ScreenSaveActive")
	flag(user.Secure, policy.Secure, "ScreenSaverIsSecure")
	if exe, ok, why := effective(user.Exe, policy.Exe, "SCRNSAVE.EXE"); !ok {
		reasons = append(reasons, why)
	} else if exe == "" {
		off = true
	}
	if off {
		// Any one of these settled off means the screen saver never locks,
		// whatever the unreadable ones say.
		return mechanism{known: true}
	}
	t, ok, why := effective(user.TimeOut, policy.TimeOut, "ScreenSaveTimeOut")
	switch {
	case !ok:
		reasons = append(reasons, why)
	case t == "":
		reasons = append(reasons, "ScreenSaveTimeOut is not set")
	default:
		n, err := strconv.ParseInt(t, 10, 64)
		switch {
		case err != nil || n < 0:
			reasons = append(reasons, clip(fmt.Sprintf("ScreenSaveTimeOut is %q, not a number of seconds", t)))
		case n == 0:
			return mechanism{known: true}
		case len(reasons) == 0:
			return mechanism{known: true, on: true, timeout: n}
		}
	}
	return mechanism{reason: strings.Join(reasons, "; ")}
}
