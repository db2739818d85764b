package linux

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cordon-mdm/cordon/protocol"
)

// LockPolicy reads the automatic screen lock configured for the session's
// user: KDE's kscreenlockerrc when the user has one, GNOME's gsettings
// otherwise. gsettings runs as that user on their session bus, because
// per-user settings live in the user's dconf database.
func LockPolicy(ctx context.Context, sess Session, home string, run Runner) *protocol.LockPolicy {
	p := &protocol.LockPolicy{}
	if sess.User == "" {
		unknownPolicy(p, "no active user session")
		return p
	}
	kde := filepath.Join(home, ".config", "kscreenlockerrc")
	if b, err := os.ReadFile(kde); err == nil {
		p.Source = kde
		enabled, timeout := ParseKScreenLocker(b)
		p.Enabled, p.TimeoutSeconds = &enabled, &timeout
		return p
	}
	p.Source = "gsettings org.gnome.desktop.session/screensaver as " + sess.User
	get := func(schema, key string) (string, error) {
		out, err := run(ctx, "runuser", "-u", sess.User, "--", "env",
			fmt.Sprintf("DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/%d/bus", sess.UID), "gsettings", "get", schema, key)
		if err != nil {
			return "", fmt.Errorf("gsettings get %s %s: %w", schema, key, err)
		}
		return strings.TrimSpace(string(out)), nil
	}
	idle, err1 := get("org.gnome.desktop.session", "idle-delay")
	enabled, err2 := get("org.gnome.desktop.screensaver", "lock-enabled")
	delay, err3 := get("org.gnome.desktop.screensaver", "lock-delay")
	if err := errors.Join(err1, err2, err3); err != nil {
		unknownPolicy(p, err.Error())
		return p
	}
	e, t, err := ParseGnomeLock(idle, enabled, delay)
	if err != nil {
		unknownPolicy(p, err.Error())
		return p
	}
	p.Enabled, p.TimeoutSeconds = &e, &t
	return p
}

func unknownPolicy(p *protocol.LockPolicy, reason string) {
	p.SetUnknown("enabled", reason)
	p.SetUnknown("timeout_seconds", reason)
}

// ParseGnomeLock combines GNOME's settings: the session goes idle after
// idle-delay seconds (0: never), the screensaver then locks after
// lock-delay more seconds if lock-enabled.
func ParseGnomeLock(idleDelay, lockEnabled, lockDelay string) (enabled bool, timeoutSeconds int64, err error) {
	idle, err := gvariantUint(idleDelay)
	if err != nil {
		return false, 0, fmt.Errorf("idle-delay: %w", err)
	}
	delay, err := gvariantUint(lockDelay)
	if err != nil {
		return false, 0, fmt.Errorf("lock-delay: %w", err)
	}
	switch lockEnabled {
	case "true":
		enabled = true
	case "false":
	default:
		return false, 0, fmt.Errorf("lock-enabled: unexpected %q", lockEnabled)
	}
	if idle == 0 || !enabled {
		return enabled && idle > 0, 0, nil
	}
	return true, idle + delay, nil
}

// gvariantUint parses gsettings' "uint32 300" (or a bare "300").
func gvariantUint(s string) (int64, error) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "uint32 ")
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("unexpected value %q", s)
	}
	return int64(n), nil
}

// ParseKScreenLocker reads [Daemon] Autolock, Timeout (minutes) and
// LockGrace (seconds). KDE writes only values that differ from its
// defaults (Autolock true, Timeout 5, LockGrace 5), so an absent key
// means the default, which is what KDE itself applies.
func ParseKScreenLocker(b []byte) (enabled bool, timeoutSeconds int64) {
	enabled, minutes, grace := true, int64(5), int64(5)
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "[") {
			section = line
			continue
		}
		if section != "[Daemon]" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "Autolock":
			enabled = strings.TrimSpace(v) != "false"
		case "Timeout":
			if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil && n >= 0 {
				minutes = n
			}
		case "LockGrace":
			if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil && n >= 0 {
				grace = n
			}
		}
	}
	if !enabled || minutes == 0 {
		return false, 0
	}
	return true, minutes*60 + grace
}
