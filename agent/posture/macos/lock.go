package macos

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/cordon-mdm/cordon/protocol"
)

// Commands whose output the lock section reads.
const (
	CmdIORegRoot = "ioreg -n Root -d1 -a"
	CmdIORegHID  = "ioreg -c IOHIDSystem -d 4 -a"
)

// ConsoleSession is the login session that owns the console, from the
// IOConsoleUsers array of the registry's Root entry.
type ConsoleSession struct {
	User   string
	UID    int64
	Locked bool
}

// ParseConsoleSession reads `ioreg -n Root -d1 -a`. It returns nil and no
// error when no user session is on the console: the login window owns
// it (nobody logged in, or fast user switching in progress).
//
// The screen is locked when the on-console session carries
// CGSSessionScreenIsLocked = true. macOS leaves the key out, rather than
// writing false, while the session is unlocked, so its absence on the
// on-console session means unlocked.
func ParseConsoleSession(out []byte) (*ConsoleSession, error) {
	v, err := DecodePlist(out)
	if err != nil {
		return nil, err
	}
	users, _, found := findKey(v, "IOConsoleUsers", 0)
	if !found {
		// The key is missing both from a Root entry with nobody logged in
		// and from output that is not the Root entry at all; only the
		// first has the registry's own properties.
		if _, _, isRoot := findKey(v, "IOKitBuildVersion", 0); isRoot {
			return nil, nil
		}
		return nil, errors.New("no IOConsoleUsers and no Root registry entry in the output")
	}
	list, ok := users.([]any)
	if !ok {
		return nil, fmt.Errorf("IOConsoleUsers is %T, not an array", users)
	}
	for _, e := range list {
		s, ok := e.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("IOConsoleUsers entry is %T, not a dict", e)
		}
		on, ok := s["kCGSSessionOnConsoleKey"].(bool)
		if !ok {
			return nil, errors.New("IOConsoleUsers entry without a boolean kCGSSessionOnConsoleKey")
		}
		if !on {
			continue
		}
		cs := &ConsoleSession{}
		cs.User, _ = s["kCGSSessionUserNameKey"].(string)
		switch id := s["kCGSSessionUserIDKey"].(type) {
		case int64:
			cs.UID = id
		default:
			return nil, errors.New("on-console session without an integer kCGSSessionUserIDKey")
		}
		switch l := s["CGSSessionScreenIsLocked"].(type) {
		case nil:
		case bool:
			cs.Locked = l
		case int64:
			// Older releases wrote the flag as an integer.
			cs.Locked = l != 0
		default:
			return nil, fmt.Errorf("CGSSessionScreenIsLocked is %T", l)
		}
		return cs, nil
	}
	return nil, nil
}

// ParseHIDIdleTime reads `ioreg -c IOHIDSystem -d 4 -a`: HIDIdleTime is
// the time since the last input event, in nanoseconds.
func ParseHIDIdleTime(out []byte) (time.Duration, error) {
	v, err := DecodePlist(out)
	if err != nil {
		return 0, err
	}
	x, _, found := findKey(v, "HIDIdleTime", 0)
	if !found {
		return 0, errors.New("no HIDIdleTime in the output")
	}
	var ns uint64
	switch t := x.(type) {
	case int64:
		if t < 0 {
			return 0, fmt.Errorf("negative HIDIdleTime %d", t)
		}
		ns = uint64(t)
	case uint64:
		ns = t
	case []byte:
		// Some releases publish the counter as 8 bytes of host-order
		// (little-endian on every Mac) data.
		if len(t) != 8 {
			return 0, fmt.Errorf("HIDIdleTime is %d bytes of data, not 8", len(t))
		}
		ns = binary.LittleEndian.Uint64(t)
	default:
		return 0, fmt.Errorf("HIDIdleTime is %T", x)
	}
	if ns > math.MaxInt64 {
		return 0, fmt.Errorf("HIDIdleTime %d out of range", ns)
	}
	return time.Duration(ns), nil
}

// Lock builds the lock section from the two ioreg runs. now is when they
// ran, to turn the idle time into the moment the user was last active.
func Lock(root, hid Output, now time.Time) *protocol.LockState {
	l := &protocol.LockState{State: protocol.LockUnknown}
	l.Source = "ioreg IOConsoleUsers, IOHIDSystem HIDIdleTime"
	if r := root.failure(); r != "" {
		l.SetUnknown("state", r)
	} else if cs, err := ParseConsoleSession(root.Stdout); err != nil {
		l.SetUnknown("state", clip(root.Command+": "+err.Error()))
	} else if cs == nil || cs.Locked {
		// With no session on the console the login window is showing;
		// getting past it takes credentials, as with a locked screen.
		l.State = protocol.LockLocked
	} else {
		l.State = protocol.LockUnlocked
	}

	if r := hid.failure(); r != "" {
		l.SetUnknown("idle_seconds", r)
		l.SetUnknown("idle_since", r)
	} else if idle, err := ParseHIDIdleTime(hid.Stdout); err != nil {
		r := clip(hid.Command + ": " + err.Error())
		l.SetUnknown("idle_seconds", r)
		l.SetUnknown("idle_since", r)
	} else {
		l.IdleSeconds = ptr(int64(idle / time.Second))
		l.IdleSince = ptr(now.Add(-idle).UTC().Truncate(time.Second))
	}
	return l
}
