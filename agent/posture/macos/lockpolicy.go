package macos

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/cordon-mdm/cordon/protocol"
)

// Commands whose output the lock policy section reads. The first two
// read the console user's settings and must run as that user.
const (
	CmdScreenLock   = "sysadminctl -screenLock status"
	CmdSaverIdle    = "defaults -currentHost read com.apple.screensaver idleTime"
	CmdPowerSetting = "pmset -g"
)

var (
	screenLockDelay = regexp.MustCompile(`screenLock delay is (\d+) seconds?`)
	screenLockNow   = regexp.MustCompile(`screenLock delay is immediate`)
	screenLockOff   = regexp.MustCompile(`screenLock is off`)
)

// ParseScreenLock reads `sysadminctl -screenLock status`, which logs to
// stderr ("... sysadminctl[123:456] screenLock delay is 300 seconds"). It
// returns whether a password is required after sleep or the screen saver
// and the grace period before it is.
func ParseScreenLock(out string) (on bool, delaySeconds int64, err error) {
	if m := screenLockDelay.FindStringSubmatch(out); m != nil {
		d, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil {
			return false, 0, fmt.Errorf("bad screenLock delay %q", m[1])
		}
		return true, d, nil
	}
	if screenLockNow.MatchString(out) {
		return true, 0, nil
	}
	if screenLockOff.MatchString(out) {
		return false, 0, nil
	}
	return false, 0, errors.New("no screenLock status line")
}

// errNotSet marks a default that is absent, as opposed to unreadable.
var errNotSet = errors.New("not set")

// ParseSaverIdleTime reads `defaults -currentHost read
// com.apple.screensaver idleTime`: seconds before the screen saver
// starts, 0 for never.
func ParseSaverIdleTime(o Output) (int64, error) {
	if o.Err != nil {
		if strings.Contains(string(o.Stderr), "does not exist") {
			return 0, errNotSet
		}
		return 0, errors.New(o.failure())
	}
	s := strings.TrimSpace(string(o.Stdout))
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, errors.New(unrecognised(o.Command, o.Stdout))
	}
	return n, nil
}

// ParsePmsetSleep reads `pmset -g` for the settings in use: minutes
// before the display sleeps and before the system sleeps, 0 for never.
func ParsePmsetSleep(out string) (displayMin, systemMin int64, err error) {
	var haveDisplay, haveSystem bool
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		n, perr := strconv.ParseInt(f[1], 10, 64)
		if perr != nil || n < 0 {
			continue
		}
		switch f[0] {
		case "displaysleep":
			displayMin, haveDisplay = n, true
		case "sleep":
			systemMin, haveSystem = n, true
		}
	}
	if !haveDisplay || !haveSystem {
		return 0, 0, errors.New("no displaysleep and sleep settings")
	}
	return displayMin, systemMin, nil
}

// LockPolicy builds the lock policy section.
//
// The session locks when a password is required (sysadminctl
// screenLock on) and then the screen saver starts, the display sleeps or
// the system sleeps, whichever comes first; the screenLock delay runs
// after that. So the timeout is the smallest non-zero of those idle
// times plus the delay, and the policy is disabled (timeout 0, never)
// when the password is off or all three are "never". The power settings
// are those of the power source in use when pmset ran.
func LockPolicy(screenLock, saverIdle, pmset Output) *protocol.LockPolicy {
	p := &protocol.LockPolicy{}
	p.Source = "sysadminctl -screenLock, com.apple.screensaver idleTime, pmset"

	lockOn, delay, err := false, int64(0), error(nil)
	if r := screenLock.failure(); r != "" {
		err = errors.New(r)
	} else if lockOn, delay, err = ParseScreenLock(screenLock.combined()); err != nil {
		err = errors.New(unrecognised(screenLock.Command, []byte(screenLock.combined())))
	}
	if err != nil {
		p.SetUnknown("enabled", err.Error())
		p.SetUnknown("timeout_seconds", err.Error())
		return p
	}
	if !lockOn {
		p.Enabled, p.TimeoutSeconds = ptr(false), ptr(int64(0))
		return p
	}

	// Each trigger: seconds, or -1 when it could not be read.
	saver, saverWhy := int64(-1), ""
	if n, err := ParseSaverIdleTime(saverIdle); err == nil {
		saver = n
	} else if errors.Is(err, errNotSet) {
		// Unset means the system default of the release, which the
		// agent does not know and must not assume.
		saverWhy = saverIdle.Command + ": idleTime not set for the console user"
	} else {
		saverWhy = err.Error()
	}
	display, system, sleepWhy := int64(-1), int64(-1), ""
	if r := pmset.failure(); r != "" {
		sleepWhy = r
	} else if d, s, err := ParsePmsetSleep(string(pmset.Stdout)); err != nil {
		sleepWhy = clip(pmset.Command + ": " + err.Error())
	} else {
		display, system = d*60, s*60
	}

	first, unknown := int64(0), []string{}
	for _, t := range []struct {
		secs int64
		why  string
	}{{saver, saverWhy}, {display, sleepWhy}, {system, sleepWhy}} {
		switch {
		case t.secs < 0:
			unknown = append(unknown, t.why)
		case t.secs > 0 && (first == 0 || t.secs < first):
			first = t.secs
		}
	}
	if len(unknown) == 0 {
		if first == 0 {
			p.Enabled, p.TimeoutSeconds = ptr(false), ptr(int64(0))
		} else {
			p.Enabled, p.TimeoutSeconds = ptr(true), ptr(first+delay)
		}
		return p
	}
	// A trigger that is known to fire settles "enabled" even when
	// another is unreadable; the timeout then stays unknown, because the
	// unreadable one might fire sooner.
	why := clip(strings.Join(dedupe(unknown), "; "))
	if first > 0 {
		p.Enabled = ptr(true)
	} else {
		p.SetUnknown("enabled", why)
	}
	p.SetUnknown("timeout_seconds", why)
	return p
}

func dedupe(s []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}
