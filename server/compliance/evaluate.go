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
	CtlKeyProtection:   {"5.13.2 (c)", "moderate"},
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
	// Peer is set for unapproved Bluetooth peers.
	Peer *protocol.BluetoothDevice
}

// Facts are what evaluation needs beyond the report.
type Facts struct {
	Now time.Time
	// Allowed says whether a Bluetooth peer is on the allow-list for
	// this device.
	Allowed func(addr string) bool
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
		return "could not tell: the agent did not report " + section
	}
	c := p.Controls

	if r := c.DiskEncryption; r != nil && r.Required {
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
		switch {
		case pa == nil:
			add(CtlSecurityUpdates, "", why(protocol.Provenance{}, "", "patch level"), true, pt.SecurityUpdatesWithin)
		case os == "android":
			if pt.AndroidPatchMaxAge > 0 {
				d, err := time.Parse("2006-01-02", pa.SecurityPatch)
				switch {
				case err != nil:
					add(CtlAndroidPatch, "", why(pa.Provenance, "security_patch", "the Android security patch level"), true, 0)
				case f.Now.Sub(d) > pt.AndroidPatchMaxAge.D():
					add(CtlAndroidPatch, "", fmt.Sprintf("security patch level %s is older than %s", pa.SecurityPatch, pt.AndroidPatchMaxAge), false, 0)
				}
			}
		case pa.PendingSecurity == nil:
			add(CtlSecurityUpdates, "", why(pa.Provenance, "pending_security", "pending security updates"), true, pt.SecurityUpdatesWithin)
		case *pa.PendingSecurity > 0:
			// The grace is the patch window: the finding's age is how long
			// the device has had security updates pending.
			add(CtlSecurityUpdates, "", fmt.Sprintf("%d security updates pending", *pa.PendingSecurity), false, pt.SecurityUpdatesWithin)
		}
		if want, ok := pt.MinOSVersion[pos.OS.Name]; ok && !profiles.VersionAtLeast(pos.OS.Version, want) {
			add(CtlOSVersion, "", fmt.Sprintf("%s %s is older than the minimum %s", pos.OS.Name, orDash(pos.OS.Version), want), false, 0)
		}
	}

	h := pos.Hygiene
	hyg := func(ctl string, r *profiles.Required, v *bool, field, failing string) {
		if r == nil || !r.Required {
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
	if fullFeature(pos.OS.Platform) {
		var fw, am *bool
		if h != nil {
			fw, am = h.FirewallOn, h.AntimalwareOn
		}
		hyg(CtlFirewall, c.Firewall, fw, "firewall_on", "the personal firewall is off")
		hyg(CtlAntimalware, c.Antimalware, am, "antimalware_on", "no malicious-code protection is running")
	}
	if r := c.NotRooted; r != nil && r.Required {
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
	if r := c.VerifiedBoot; r != nil && r.Required {
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
	return out
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
