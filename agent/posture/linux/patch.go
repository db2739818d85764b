package linux

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/cordon-mdm/cordon/protocol"
)

// Paths are the files the patch and hygiene readers look at, rooted for
// tests.
type Paths struct {
	Root string // "/" in production
}

func (p Paths) at(path string) string { return filepath.Join(p.Root, path) }

// Patch counts pending updates (and of them, security updates) with the
// distribution's package manager, and reads when updates were last
// installed and whether a reboot is pending.
func Patch(ctx context.Context, paths Paths, run Runner, now time.Time) *protocol.PatchLevel {
	p := &protocol.PatchLevel{}
	checked := now.UTC()
	switch {
	case exists(paths.at("/usr/bin/apt-get")):
		p.Source = "apt-get -s dist-upgrade, /var/log/apt/history.log, /var/run/reboot-required"
		out, err := run(ctx, "apt-get", "-s", "-o", "Debug::NoLocking=1", "dist-upgrade")
		if err != nil {
			p.SetUnknown("pending_security", "apt-get -s dist-upgrade: "+err.Error())
		} else {
			total, sec := ParseAptSimulate(out)
			p.PendingTotal, p.PendingSecurity, p.CheckedAt = &total, &sec, &checked
			// apt knows neither severity nor release date: each update is
			// "unknown", held to the critical window from when the agent
			// first saw it pending.
			for _, name := range AptSecurityUpdates(out) {
				p.Pending = append(p.Pending, protocol.PendingUpdate{Name: name, Severity: protocol.SeverityUnknown, FirstSeen: checked})
			}
		}
		if b, err := os.ReadFile(paths.at("/var/log/apt/history.log")); err != nil {
			p.SetUnknown("last_update", "apt history: "+err.Error())
		} else if t, ok := ParseAptHistory(b); ok {
			p.LastUpdate = &t
		} else {
			p.SetUnknown("last_update", "apt history.log has no completed run (rotated?)")
		}
		switch {
		case exists(paths.at("/var/run/reboot-required")):
			yes := true
			p.RebootRequired = &yes
		case exists(paths.at("/usr/share/update-notifier/notify-reboot-required")) || exists(paths.at("/usr/sbin/needrestart")):
			no := false
			p.RebootRequired = &no
		default:
			// Without update-notifier or needrestart nothing writes the
			// flag file, so its absence says nothing.
			p.SetUnknown("reboot_required", "neither update-notifier-common nor needrestart is installed")
		}
	case exists(paths.at("/usr/bin/dnf")):
		p.Source = "dnf updateinfo, dnf check-update, dnf history, needs-restarting"
		if out, err := run(ctx, "dnf", "-q", "updateinfo", "list", "--security"); err != nil {
			p.SetUnknown("pending_security", "dnf updateinfo: "+err.Error())
		} else {
			sec := countDnfLines(out)
			p.PendingSecurity, p.CheckedAt = &sec, &checked
			p.Pending = ParseDnfSecurity(out, checked)
		}
		// check-update exits 100 when updates are available.
		out, err := run(ctx, "dnf", "-q", "check-update")
		var ee *exec.ExitError
		if err == nil || (errors.As(err, &ee) && ee.ExitCode() == 100) {
			total := countDnfLines(out)
			p.PendingTotal = &total
		} else {
			p.SetUnknown("pending_total", "dnf check-update: "+err.Error())
		}
		if out, err := run(ctx, "dnf", "-q", "history", "list"); err != nil {
			p.SetUnknown("last_update", "dnf history: "+err.Error())
		} else if t, ok := ParseDnfHistory(out); ok {
			p.LastUpdate = &t
		} else {
			p.SetUnknown("last_update", "dnf history lists no transaction")
		}
		_, err = run(ctx, "needs-restarting", "-r")
		switch {
		case err == nil:
			no := false
			p.RebootRequired = &no
		case errors.As(err, &ee) && ee.ExitCode() == 1:
			yes := true
			p.RebootRequired = &yes
		default:
			p.SetUnknown("reboot_required", "needs-restarting -r: "+err.Error())
		}
	default:
		reason := "no supported package manager (apt-get, dnf)"
		for _, f := range []string{"pending_security", "last_update", "reboot_required"} {
			p.SetUnknown(f, reason)
		}
	}
	return p
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// ParseAptSimulate counts the packages apt would install or upgrade, and
// those whose candidate comes from a security archive
// ("Debian-Security:12/stable-security", "Ubuntu:22.04/jammy-security").
func ParseAptSimulate(b []byte) (total, security int) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "Inst ") {
			continue
		}
		total++
		if _, origin, ok := strings.Cut(line, " ("); ok && strings.Contains(origin, "-security") {
			security++
		}
	}
	return total, security
}

// AptSecurityUpdates names the packages apt would upgrade from a
// security archive, in the order apt lists them, each once.
func AptSecurityUpdates(b []byte) []string {
	var names []string
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "Inst ")
		if !ok {
			continue
		}
		name, origin, ok := strings.Cut(line, " (")
		if !ok || !strings.Contains(origin, "-security") {
			continue
		}
		if f := strings.Fields(name); len(f) > 0 && !seen[f[0]] {
			seen[f[0]] = true
			names = append(names, f[0])
		}
	}
	return names
}

// dnfSeverity maps updateinfo's severities (Red Hat's, Fedora's) to the
// SI-2 classes.
var dnfSeverity = map[string]string{"critical": protocol.SeverityCritical, "important": protocol.SeverityHigh,
	"moderate": protocol.SeverityMedium, "low": protocol.SeverityLow}

// ParseDnfSecurity reads `dnf updateinfo list --security`: "ADVISORY
// SEVERITY/Sec. PACKAGE" per line. A severity dnf does not give
// ("unknown/Sec.", "Sec.") is unknown.
func ParseDnfSecurity(b []byte, seen time.Time) []protocol.PendingUpdate {
	var out []protocol.PendingUpdate
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 || !strings.HasSuffix(f[1], "Sec.") {
			continue
		}
		sev, _, _ := strings.Cut(strings.ToLower(f[1]), "/")
		s, ok := dnfSeverity[sev]
		if !ok {
			s = protocol.SeverityUnknown
		}
		out = append(out, protocol.PendingUpdate{Name: f[2], Severity: s, FirstSeen: seen})
	}
	return out
}

// ParseAptHistory returns the End-Date of the last apt run.
func ParseAptHistory(b []byte) (time.Time, bool) {
	var last time.Time
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64*1024), 4<<20)
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), "End-Date: ")
		if !ok {
			continue
		}
		// apt writes local time with two spaces: "2025-06-24  14:36:25".
		if t, err := time.ParseInLocation("2006-01-02 15:04:05", strings.Join(strings.Fields(v), " "), time.Local); err == nil && t.After(last) {
			last = t
		}
	}
	return last.UTC(), !last.IsZero()
}

func countDnfLines(b []byte) int {
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		// check-update ends with an "Obsoleting Packages" section and
		// both print blank separators; count package lines only.
		if line == "" || strings.HasPrefix(line, "Obsoleting") || strings.HasPrefix(line, "Last metadata") || strings.HasPrefix(line, "Security:") {
			continue
		}
		if len(strings.Fields(line)) >= 3 {
			n++
		}
	}
	return n
}

// ParseDnfHistory returns the newest transaction time from
// `dnf history list`: "ID | Command line | Date and time | Action(s) | Altered".
func ParseDnfHistory(b []byte) (time.Time, bool) {
	var last time.Time
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		cols := strings.Split(sc.Text(), "|")
		if len(cols) < 4 {
			continue
		}
		if t, err := time.ParseInLocation("2006-01-02 15:04", strings.TrimSpace(cols[2]), time.Local); err == nil && t.After(last) {
			last = t
		}
	}
	return last.UTC(), !last.IsZero()
}
