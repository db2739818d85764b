// Package compliance turns posture into decisions: every report is
// evaluated against the device's profile into findings, findings age
// through their grace period, and the device is compliant, noncompliant
// (in grace, with a deadline) or quarantined, which is what the access
// decision for VPNs, NAC and CJI applications answers from.
package compliance

import (
	"fmt"
	"strings"
	"time"

	"github.com/cordon-mdm/cordon/profiles"
	"github.com/cordon-mdm/cordon/protocol"
)

// Control ids, one per check; a finding is (control, subject).
const (
	CtlDiskEncryption  = "disk_encryption"
	CtlSessionLock     = "session_lock"
	CtlSecurityUpdates = "patches.security_updates"
	CtlOSVersion       = "patches.os_version"
	CtlAndroidPatch    = "patches.android_patch_level"
	CtlFirewall        = "firewall"
	CtlAntimalware     = "antimalware"
	CtlNotRooted       = "not_rooted"
	CtlVerifiedBoot    = "verified_boot"
	CtlBluetoothPeer   = "bluetooth.unapproved_peer"
	CtlBluetoothOff    = "bluetooth.off"
	CtlKeyProtection   = "key_protection"
	CtlApplications    = "application_control"
)

// CJIS references and severities per control.
var controlInfo = map[string]struct{ CJIS, Severity string }{
	CtlDiskEncryption:  {"5.10.1.2, 5.13.3", "high"},
	CtlSessionLock:     {"5.5.5 [AC-11]", "moderate"},
	CtlSecurityUpdates: {"5.10.4.1 [SI-2], 5.13.4.1", "high"},
	CtlOSVersion:       {"5.10.4.1 [SI-2]", "high"},
	CtlAndroidPatch:    {"5.13.4.1", "high"},
	CtlFirewall:        {"5.13.3", "moderate"},
	CtlAntimalware:     {"5.13.3, 5.10.4.2", "moderate"},
	CtlNotRooted:       {"5.13.2 (d)", "critical"},
	CtlVerifiedBoot:    {"5.13.2 (d)", "high"},
	CtlBluetoothPeer:   {"5.13.1.3, agency policy T", "high"},
	CtlBluetoothOff:    {"5.13.1.3, agency policy T", "moderate"},
	CtlKeyProtection:   {"5.13.7.3", "moderate"},
	CtlApplications:    {"5.13.2 (h)", "high"},
}

// Result is one failing or unknown control for one report.
type Result struct {
	Control string
	// Subject distinguishes findings of one control (a Bluetooth peer's
	// address); empty for device-wide controls.
	Subject  string
	CJIS     string
	Severity string
	Message  string
	// Unknown: the device could not tell. Never compliant for a
	// required control, and its own finding.
	Unknown bool
	Grace   time.Duration
	// Deadline, when set, is a deadline derived from the device's own
	// dates (a pending update's release or first sighting). The device is
	// not trusted with it beyond what the server saw itself: the
	// finding's deadline is the earlier of this and its first sighting
	// plus Grace.
	Deadline *time.Time
	// Peer is set for unapproved Bluetooth peers.
	Peer *protocol.BluetoothDevice
}

// Facts are what evaluation needs beyond the report.
type Facts struct {
	Now time.Time
	// Allowed says whether a Bluetooth peer is on the allow-list for
	// this device.
	Allowed func(addr string) bool
	// KeyProtection is what the server verified of the identity key at
	// enrollment (protocol.Key*; "" is software).
	KeyProtection string
}

// fullFeature: firewall and malicious-code protection are required on
// full-feature operating systems (CJIS 5.13.3), not on phones.
func fullFeature(platform string) bool {
	os, _, _ := strings.Cut(platform, "/")
	return os == "linux" || os == "darwin" || os == "windows"
}

// Evaluate checks one report against a profile.
func Evaluate(p *profiles.Profile, pos protocol.Posture, f Facts) []Result {
	var out []Result
	add := func(ctl, subject, msg string, unknown bool, grace profiles.Duration) {
		info := controlInfo[ctl]
		out = append(out, Result{Control: ctl, Subject: subject, CJIS: info.CJIS, Severity: info.Severity,
			Message: msg, Unknown: unknown, Grace: grace.D()})
	}
	why := func(pv protocol.Provenance, field, section string) string {
		if r := pv.Unknown[field]; r != "" {
			return "could not tell: " + r
		}
		// Evaluation only reaches a control that applies here, so a
		// device that calls it not applicable cannot excuse itself.
		if r, ok := pv.NotApplicable[field]; ok {
			return fmt.Sprintf("could not tell: the device says %s is not applicable (%s), but the profile applies it to %s", section, r, pos.OS.Platform)
		}
		return "could not tell: the agent did not report " + section
	}
	c := p.Controls
	applies := func(r *profiles.Required) bool { return r != nil && r.Required && r.AppliesTo(pos.OS.Platform) }

	if r := c.DiskEncryption; applies(r) {
		switch {
		case pos.Disk == nil:
			add(CtlDiskEncryption, "", why(protocol.Provenance{}, "", "disk encryption"), true, r.Grace)
		case pos.Disk.State == protocol.DiskEncrypted:
		case pos.Disk.State == protocol.DiskUnknown || pos.Disk.State == "":
			add(CtlDiskEncryption, "", why(pos.Disk.Provenance, "state", "disk encryption"), true, r.Grace)
		default:
			add(CtlDiskEncryption, "", fmt.Sprintf("system volume %s is %s", orDash(pos.Disk.Volume), pos.Disk.State), false, r.Grace)
		}
	}

	if sl := c.SessionLock; sl != nil && sl.Required {
		lp := pos.LockPolicy
		switch {
		case lp == nil:
			add(CtlSessionLock, "", why(protocol.Provenance{}, "", "the session lock policy"), true, sl.Grace)
		case lp.Enabled == nil:
			add(CtlSessionLock, "", why(lp.Provenance, "enabled", "the session lock policy"), true, sl.Grace)
		case !*lp.Enabled:
			add(CtlSessionLock, "", "automatic session lock is off", false, sl.Grace)
		case lp.TimeoutSeconds == nil:
			add(CtlSessionLock, "", why(lp.Provenance, "timeout_seconds", "the lock timeout"), true, sl.Grace)
		case *lp.TimeoutSeconds == 0 || time.Duration(*lp.TimeoutSeconds)*time.Second > sl.MaxTimeout.D():
			t := "never"
			if *lp.TimeoutSeconds > 0 {
				t = (time.Duration(*lp.TimeoutSeconds) * time.Second).String()
			}
			add(CtlSessionLock, "", fmt.Sprintf("session locks after %s of inactivity; at most %s allowed", t, sl.MaxTimeout), false, sl.Grace)
		}
	}

	if pt := c.Patches; pt != nil {
		pa := pos.Patch
		os, _, _ := strings.Cut(pos.OS.Platform, "/")
		critical := profiles.Duration(pt.Window(protocol.SeverityCritical))
		switch {
		case pa == nil:
			add(CtlSecurityUpdates, "", why(protocol.Provenance{}, "", "patch level"), true, critical)
		case os == "android":
			d, err := time.Parse("2006-01-02", pa.SecurityPatch)
			if pt.AndroidPatchMaxAge > 0 {
				switch {
				case err != nil:
					add(CtlAndroidPatch, "", why(pa.Provenance, "security_patch", "the Android security patch level"), true, 0)
				case f.Now.Sub(d) > pt.AndroidPatchMaxAge.D():
					add(CtlAndroidPatch, "", fmt.Sprintf("security patch level %s is older than %s", pa.SecurityPatch, pt.AndroidPatchMaxAge), false, 0)
				}
			}
			if err == nil {
				out = append(out, androidBulletin(pt, d, f.Now)...)
			}
		case len(pa.Pending) > 0:
			out = append(out, pendingUpdates(pt, pa.Pending, f.Now)...)
		case pa.PendingSecurity == nil:
			add(CtlSecurityUpdates, "", why(pa.Provenance, "pending_security", "pending security updates"), true, critical)
		case *pa.PendingSecurity > 0:
			// An agent that sends only the count (older ones): its updates'
			// severity is unknown, held to the critical window from the
			// server's first sighting, under the same subject as the
			// unknown-severity updates of a newer agent so an upgrade does
			// not restart the clock.
			add(CtlSecurityUpdates, protocol.SeverityUnknown, fmt.Sprintf("%d security updates pending (severity unknown: held to the %s critical window)",
				*pa.PendingSecurity, critical), false, critical)
		}
		if want, ok := pt.MinOSVersion[pos.OS.Name]; ok && !profiles.VersionAtLeast(pos.OS.Version, want) {
			add(CtlOSVersion, "", fmt.Sprintf("%s %s is older than the minimum %s", pos.OS.Name, orDash(pos.OS.Version), want), false, 0)
		}
	}

	h := pos.Hygiene
	hyg := func(ctl string, r *profiles.Required, v *bool, field, failing string) {
		if !applies(r) {
			return
		}
		switch {
		case v == nil && r.WhereReported:
			// Checked only where the platform reports it.
		case h == nil:
			add(ctl, "", why(protocol.Provenance{}, "", "security hygiene"), true, r.Grace)
		case v == nil:
			add(ctl, "", why(h.Provenance, field, field), true, r.Grace)
		case !*v:
			add(ctl, "", failing, false, r.Grace)
		}
	}
	// Firewall and malicious-code protection belong to full-feature
	// operating systems (5.13.3); a profile that names no platforms for
	// them (one stored before platforms existed) keeps that default.
	fullFeatureOnly := func(r *profiles.Required) *profiles.Required {
		if r == nil || r.Platforms != nil || fullFeature(pos.OS.Platform) {
			return r
		}
		return nil
	}
	var fw, am *bool
	if h != nil {
		fw, am = h.FirewallOn, h.AntimalwareOn
	}
	hyg(CtlFirewall, fullFeatureOnly(c.Firewall), fw, "firewall_on", "the personal firewall is off")
	if a := c.Antimalware; a != nil {
		n := len(out)
		hyg(CtlAntimalware, fullFeatureOnly(&a.Required), am, "antimalware_on", "no malicious-code protection is running")
		// SI-3 asks for automatic updates: where the platform says when
		// the signatures were updated, running is not enough.
		if len(out) == n && fullFeatureOnly(&a.Required) != nil && applies(&a.Required) && am != nil && *am && h.AntimalwareSignaturesAt != nil {
			// Each vendor's own cadence: the limit is the device's platform's.
			at, limit := *h.AntimalwareSignaturesAt, a.SignatureAge(pos.OS.Platform)
			if age := f.Now.Sub(at); age > limit {
				add(CtlAntimalware, "", fmt.Sprintf("malware signatures last updated %s (%d days ago); at most %s allowed",
					at.UTC().Format("2006-01-02"), int(age/(24*time.Hour)), profiles.Duration(limit)), false, a.Grace)
			}
		}
	}
	if r := c.NotRooted; applies(r) {
		switch {
		case h == nil || h.RootedSuspected == nil:
			pv := protocol.Provenance{}
			if h != nil {
				pv = h.Provenance
			}
			add(CtlNotRooted, "", why(pv, "rooted_suspected", "root detection"), true, r.Grace)
		case *h.RootedSuspected:
			add(CtlNotRooted, "", "rooted or jailbroken: "+strings.Join(h.RootedEvidence, "; "), false, r.Grace)
		}
	}
	if r := c.VerifiedBoot; applies(r) {
		var sb *bool
		if h != nil {
			sb = h.SecureBoot
		}
		hyg(CtlVerifiedBoot, r, sb, "secure_boot", "verified boot (Secure Boot, SIP) is off")
	}

	if bt := c.Bluetooth; bt != nil && pos.Bluetooth != nil {
		b := pos.Bluetooth
		if bt.Mode == profiles.BluetoothOff && b.Powered != nil && *b.Powered {
			add(CtlBluetoothOff, "", "Bluetooth is on; the profile requires it off", false, bt.Grace)
		}
		for i := range b.Devices {
			d := b.Devices[i]
			// Nearby but unused peers are no finding; in "off" mode the
			// radio itself is the finding.
			if !d.Paired && !d.Connected || bt.Mode != profiles.BluetoothAllowList {
				continue
			}
			if f.Allowed != nil && f.Allowed(d.Address) {
				continue
			}
			state := "paired"
			if d.Connected {
				state = "connected"
			}
			if d.Blocked {
				state += ", blocked on the device"
			}
			add(CtlBluetoothPeer, strings.ToUpper(d.Address), fmt.Sprintf("unapproved Bluetooth device %s (%s) %s", d.Address, orDash(d.Name), state), false, bt.Grace)
			out[len(out)-1].Peer = &d
		}
	}
	if k := c.KeyProtection; k != nil && k.RequireTPM {
		switch {
		case pos.Identity == nil || pos.Identity.KeyStorage == "":
			add(CtlKeyProtection, "", "could not tell: the agent did not report where its identity key is held", true, 0)
		case pos.Identity.KeyStorage != "tpm":
			add(CtlKeyProtection, "", "the identity key is held in a "+pos.Identity.KeyStorage+", not a TPM", false, 0)
		}
	}
	if k := c.KeyProtection; k != nil && k.RequireLevel != "" {
		have := protocol.KeyLevel(f.KeyProtection)
		// Subject "enrollment": the server's own finding, apart from
		// require_tpm's on the agent's word.
		if protocol.KeyProtectionRank(have) < protocol.KeyProtectionRank(k.RequireLevel) {
			add(CtlKeyProtection, "enrollment", "the identity key's protection verified at enrollment is "+have+
				"; the profile requires "+k.RequireLevel+" (enroll again with a TPM whose EK certificate chains to a configured EK root)", false, 0)
		}
	}
	out = append(out, applications(c.ApplicationControl, pos)...)
	return out
}

// pendingUpdates turns a list of pending security updates into one
// finding per severity (the subject): each severity has its own window,
// and the server's first sighting of a severity's finding bounds what
// the device's dates can claim for it. Each update's clock starts at its
// release where the platform says, else when the agent first saw it
// pending; a date in the future counts as now.
func pendingUpdates(pt *profiles.Patches, pending []protocol.PendingUpdate, now time.Time) []Result {
	type group struct {
		names    []string
		deadline time.Time
		oldest   time.Time
	}
	groups := map[string]*group{}
	for _, u := range pending {
		sev := u.Severity
		if sev == "" {
			sev = protocol.SeverityUnknown
		}
		start := u.FirstSeen
		if u.ReleasedAt != nil && !u.ReleasedAt.IsZero() {
			start = *u.ReleasedAt
		}
		if start.After(now) || start.IsZero() {
			start = now
		}
		dl := start.Add(pt.Window(sev))
		g := groups[sev]
		if g == nil {
			g = &group{deadline: dl, oldest: start}
			groups[sev] = g
		}
		g.names = append(g.names, u.Name)
		g.deadline, g.oldest = minTime(g.deadline, dl), minTime(g.oldest, start)
	}
	var out []Result
	info := controlInfo[CtlSecurityUpdates]
	for _, sev := range []string{protocol.SeverityCritical, protocol.SeverityHigh, protocol.SeverityMedium, protocol.SeverityLow, protocol.SeverityUnknown} {
		g := groups[sev]
		if g == nil {
			continue
		}
		w := pt.Window(sev)
		label := sev
		if sev == protocol.SeverityUnknown {
			label = "severity unknown, held to the critical window"
		}
		names := g.names
		if len(names) > 5 {
			names = append(names[:5:5], fmt.Sprintf("%d more", len(g.names)-5))
		}
		dl := g.deadline
		out = append(out, Result{Control: CtlSecurityUpdates, Subject: sev, CJIS: info.CJIS, Severity: info.Severity,
			Message: fmt.Sprintf("%d security updates pending (%s: %s), the oldest since %s: %s", len(g.names), label,
				profiles.Duration(w), g.oldest.UTC().Format("2006-01-02"), strings.Join(names, ", ")),
			Grace: w, Deadline: &dl})
	}
	return out
}

// androidBulletin applies the SI-2 windows to an Android phone. Android
// says only which monthly security bulletin it has (the patch level
// date); every bulletin after it is pending. The next one is published at
// the start of the following month, and its severity is unknown here
// (bulletins nearly always carry critical fixes), so it is held to the
// critical window from the first of that month: the earliest it can
// have been released, the safe side.
func androidBulletin(pt *profiles.Patches, level, now time.Time) []Result {
	next := time.Date(level.Year(), level.Month()+1, 1, 0, 0, 0, 0, time.UTC)
	if next.After(now) {
		return nil // no later bulletin yet
	}
	return pendingUpdates(pt, []protocol.PendingUpdate{{
		Name:       "Android security bulletin " + next.Format("2006-01") + " (patch level " + level.Format("2006-01-02") + " installed)",
		Severity:   protocol.SeverityUnknown,
		ReleasedAt: &next, FirstSeen: now,
	}}, now)
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
