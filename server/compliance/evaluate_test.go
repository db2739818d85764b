package compliance

import (
	"strings"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/profiles"
	"github.com/cordon-mdm/cordon/protocol"
)

var now = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func ptr[T any](v T) *T { return &v }

// good is a Linux laptop that passes every cjis-baseline control.
func good() protocol.Posture {
	return protocol.Posture{CollectedAt: now,
		OS:         protocol.OSIdentity{Name: "Debian GNU/Linux", Version: "12", Platform: "linux/amd64"},
		LockPolicy: &protocol.LockPolicy{Enabled: ptr(true), TimeoutSeconds: ptr(int64(900))},
		Disk:       &protocol.DiskEncryption{State: protocol.DiskEncrypted, Volume: "/"},
		Patch:      &protocol.PatchLevel{PendingSecurity: ptr(0)},
		Bluetooth: &protocol.Bluetooth{Powered: ptr(true), Devices: []protocol.BluetoothDevice{
			{Address: "AA:BB:CC:00:00:01", Name: "approved headset", Paired: true, Connected: true}}},
		Hygiene: &protocol.Hygiene{FirewallOn: ptr(true), AntimalwareOn: ptr(true), SecureBoot: ptr(true), RootedSuspected: ptr(false)},
	}
}

func allowed(addr string) bool { return addr == "AA:BB:CC:00:00:01" }

// phone turns good() into a compliant Android phone.
func phone(p *protocol.Posture) {
	p.OS.Platform, p.Patch.SecurityPatch = "android/arm64", "2026-11-05"
	p.Hygiene.FirewallOn, p.Hygiene.AntimalwareOn = nil, nil
}

// TestBaselineControls: each control of cjis-baseline passes on a good
// report and fails on a crafted one; unknown is its own finding, never a
// pass.
func TestBaselineControls(t *testing.T) {
	base, _ := profiles.Baseline()
	if r := Evaluate(base, good(), Facts{Now: now, Allowed: allowed}); len(r) != 0 {
		t.Fatalf("a good laptop has findings: %+v", r)
	}
	unknown := protocol.Provenance{Unknown: map[string]string{}}
	for _, c := range []struct {
		name    string
		mutate  func(p *protocol.Posture)
		control string
		unknown bool
		msg     string
	}{
		{"unencrypted", func(p *protocol.Posture) { p.Disk.State = protocol.DiskUnencrypted }, CtlDiskEncryption, false, "unencrypted"},
		{"encryption in progress", func(p *protocol.Posture) { p.Disk.State = protocol.DiskInProgress }, CtlDiskEncryption, false, "in_progress"},
		{"encryption unknown", func(p *protocol.Posture) {
			p.Disk = &protocol.DiskEncryption{State: protocol.DiskUnknown, Provenance: protocol.Provenance{Unknown: map[string]string{"state": "cryptsetup not found"}}}
		}, CtlDiskEncryption, true, "cryptsetup not found"},
		{"no disk section", func(p *protocol.Posture) { p.Disk = nil }, CtlDiskEncryption, true, "could not tell"},
		{"lock off", func(p *protocol.Posture) { p.LockPolicy.Enabled = ptr(false) }, CtlSessionLock, false, "off"},
		{"lock after 45m", func(p *protocol.Posture) { p.LockPolicy.TimeoutSeconds = ptr(int64(2700)) }, CtlSessionLock, false, "45m"},
		{"lock never", func(p *protocol.Posture) { p.LockPolicy.TimeoutSeconds = ptr(int64(0)) }, CtlSessionLock, false, "never"},
		{"lock unknown", func(p *protocol.Posture) { p.LockPolicy = &protocol.LockPolicy{Provenance: unknown} }, CtlSessionLock, true, "could not tell"},
		{"security updates pending", func(p *protocol.Posture) { p.Patch.PendingSecurity = ptr(3) }, CtlSecurityUpdates, false, "3 security updates"},
		{"pending update listed", func(p *protocol.Posture) {
			p.Patch.PendingSecurity = ptr(1)
			p.Patch.Pending = []protocol.PendingUpdate{{Name: "openssl", Severity: protocol.SeverityUnknown, FirstSeen: now}}
		}, CtlSecurityUpdates, false, "openssl"},
		{"signatures a month old", func(p *protocol.Posture) {
			p.Hygiene.AntimalwareSignaturesAt = ptr(now.Add(-30 * 24 * time.Hour))
		}, CtlAntimalware, false, "malware signatures last updated 2026-10-24"},
		{"patches unknown", func(p *protocol.Posture) { p.Patch.PendingSecurity = nil }, CtlSecurityUpdates, true, "could not tell"},
		{"android patch unknown", func(p *protocol.Posture) { p.OS.Platform, p.Patch.SecurityPatch = "android/arm64", "" }, CtlAndroidPatch, true, "could not tell"},
		{"firewall off", func(p *protocol.Posture) { p.Hygiene.FirewallOn = ptr(false) }, CtlFirewall, false, "firewall is off"},
		{"firewall unknown", func(p *protocol.Posture) { p.Hygiene.FirewallOn = nil }, CtlFirewall, true, "could not tell"},
		{"no antimalware", func(p *protocol.Posture) { p.Hygiene.AntimalwareOn = ptr(false) }, CtlAntimalware, false, "malicious-code"},
		{"rooted", func(p *protocol.Posture) {
			phone(p)
			p.Hygiene.RootedSuspected, p.Hygiene.RootedEvidence = ptr(true), []string{"/system/xbin/su"}
		}, CtlNotRooted, false, "/system/xbin/su"},
		{"root unknown", func(p *protocol.Posture) { phone(p); p.Hygiene.RootedSuspected = nil }, CtlNotRooted, true, "could not tell"},
		// A phone must not excuse itself: where the profile applies the
		// control, "not applicable" from the device is unknown.
		{"phone says root detection does not apply", func(p *protocol.Posture) {
			phone(p)
			p.Hygiene.RootedSuspected = nil
			p.Hygiene.SetNotApplicable("rooted_suspected", "not assessed")
		}, CtlNotRooted, true, "not applicable (not assessed), but the profile applies it to android/arm64"},
		{"verified boot off", func(p *protocol.Posture) { p.Hygiene.SecureBoot = ptr(false) }, CtlVerifiedBoot, false, "verified boot"},
		{"unapproved peer", func(p *protocol.Posture) {
			p.Bluetooth.Devices = append(p.Bluetooth.Devices, protocol.BluetoothDevice{Address: "11:22:33:44:55:66", Name: "keyboard", Connected: true})
		}, CtlBluetoothPeer, false, "11:22:33:44:55:66"},
	} {
		p := good()
		c.mutate(&p)
		got := Evaluate(base, p, Facts{Now: now, Allowed: allowed})
		if len(got) != 1 || got[0].Control != c.control || got[0].Unknown != c.unknown || !strings.Contains(got[0].Message, c.msg) ||
			got[0].CJIS == "" || got[0].Severity == "" {
			t.Errorf("%s: %+v, want one %s finding (unknown %v) mentioning %q", c.name, got, c.control, c.unknown, c.msg)
		}
	}

	// Verified boot is checked only where reported.
	p := good()
	p.Hygiene.SecureBoot = nil
	if got := Evaluate(base, p, Facts{Now: now, Allowed: allowed}); len(got) != 0 {
		t.Errorf("verified boot not reported: %+v", got)
	}

	// Phones need no firewall or antivirus; nearby unpaired peers are no
	// finding; a peer already blocked still is until approved.
	p = good()
	p.OS.Platform, p.Hygiene.FirewallOn, p.Hygiene.AntimalwareOn, p.Patch.SecurityPatch = "android/arm64", nil, nil, "2026-11-05"
	p.Bluetooth.Devices = append(p.Bluetooth.Devices, protocol.BluetoothDevice{Address: "11:22:33:44:55:77"})
	if got := Evaluate(base, p, Facts{Now: now, Allowed: allowed}); len(got) != 0 {
		t.Errorf("a good phone: %+v", got)
	}
	p = good()
	p.Bluetooth.Devices[0].Blocked = true
	if got := Evaluate(base, p, Facts{Now: now, Allowed: func(string) bool { return false }}); len(got) != 1 || !strings.Contains(got[0].Message, "blocked on the device") {
		t.Errorf("blocked unapproved peer: %+v", got)
	}
}

func TestOtherProfileSettings(t *testing.T) {
	prof, err := profiles.Parse([]byte(`name: strict
controls:
  patches: {critical_within: 10d, min_os_version: {"Debian GNU/Linux": "13"}}
  bluetooth: {mode: "off", enforcement: monitor}
  key_protection: {require_tpm: true}
`))
	if err != nil {
		t.Fatal(err)
	}
	got := Evaluate(prof, good(), Facts{Now: now, Allowed: allowed})
	want := map[string]bool{CtlOSVersion: false, CtlBluetoothOff: false, CtlKeyProtection: true}
	inFile := good()
	inFile.Identity = &protocol.Identity{KeyStorage: "file"}
	if r := Evaluate(prof, inFile, Facts{Now: now, Allowed: allowed}); !hasFailing(r, CtlKeyProtection, "not a TPM") {
		t.Errorf("key in a file under require_tpm: %+v", r)
	}
	inTPM := good()
	inTPM.Identity = &protocol.Identity{KeyStorage: "tpm"}
	if r := Evaluate(prof, inTPM, Facts{Now: now, Allowed: allowed}); hasFailing(r, CtlKeyProtection, "") {
		t.Errorf("key in a TPM: %+v", r)
	}
	if len(got) != len(want) {
		t.Fatalf("findings %+v", got)
	}
	for _, r := range got {
		if u, ok := want[r.Control]; !ok || u != r.Unknown {
			t.Errorf("unexpected %+v", r)
		}
	}
}

func hasFailing(rs []Result, control, msg string) bool {
	for _, r := range rs {
		if r.Control == control && strings.Contains(r.Message, msg) {
			return true
		}
	}
	return false
}

// TestRootDetectionNotApplicableOnDesktops: Linux and Windows agents say
// root detection is not applicable; under the baseline neither has a
// finding, while the same statement from a phone is an unknown finding.
func TestRootDetectionNotApplicableOnDesktops(t *testing.T) {
	base, _ := profiles.Baseline()
	for _, platform := range []string{"linux/amd64", "windows/amd64", "darwin/arm64"} {
		p := good()
		p.OS.Platform = platform
		p.Hygiene.RootedSuspected = nil
		p.Hygiene.SetNotApplicable("rooted_suspected", "a desktop OS has administrators by design")
		if got := Evaluate(base, p, Facts{Now: now, Allowed: allowed}); len(got) != 0 {
			t.Errorf("%s: %+v", platform, got)
		}
	}
	// A profile that applies it everywhere does not let a laptop excuse
	// itself either.
	everywhere, err := profiles.Parse([]byte("name: everywhere\ncontrols:\n  not_rooted: {required: true}\n"))
	if err != nil {
		t.Fatal(err)
	}
	p := good()
	p.Hygiene.RootedSuspected = nil
	p.Hygiene.SetNotApplicable("rooted_suspected", "desktop")
	if got := Evaluate(everywhere, p, Facts{Now: now}); len(got) != 1 || !got[0].Unknown || got[0].Control != CtlNotRooted {
		t.Errorf("not_rooted everywhere, laptop says not applicable: %+v", got)
	}
}

// TestPatchWindowsBySeverity is the SI-2 table: each severity just under
// and just over its window, unknown severity held to the critical one, a
// release date against the agent's first sighting, device dates in the
// future, and the server's own first sighting bounding what the device
// claims. The deadline is the finding's: first seen by the server plus
// the grace the service stores (graceOf).
func TestPatchWindowsBySeverity(t *testing.T) {
	base, _ := profiles.Baseline()
	day := 24 * time.Hour
	type c struct {
		name     string
		severity string
		released *time.Duration // age of the release, if the platform says
		seen     time.Duration  // age of the agent's first sighting
		server   time.Duration  // age of the server's first sighting of the finding
		quar     bool           // past the deadline now
		deadline time.Duration  // expected deadline, relative to now
	}
	rel := func(d time.Duration) *time.Duration { return &d }
	const hour = time.Hour
	var cases []c
	for sev, w := range map[string]time.Duration{"critical": 15 * day, "high": 30 * day, "medium": 60 * day, "low": 90 * day, "unknown": 15 * day} {
		cases = append(cases,
			c{sev + " just under, first seen", sev, nil, w - hour, w - hour, false, hour},
			c{sev + " just over, first seen", sev, nil, w + hour, w + hour, true, -hour},
			c{sev + " just under, released", sev, rel(w - hour), 0, 0, false, hour},
			c{sev + " just over, released", sev, rel(w + hour), 0, 0, true, -hour},
		)
	}
	cases = append(cases,
		// The release date wins over the agent's later first sighting.
		c{"release before first sight", "high", rel(31 * day), 2 * day, 2 * day, true, -day},
		// A release in the future counts as now: no extra time.
		c{"release in the future", "critical", rel(-10 * day), 0, 0, false, 15 * day},
		// The agent claims it saw the update only now, every time: the
		// server saw the finding 16 days ago, so the critical window is
		// over whatever the device says.
		c{"device forgets its first sighting", "critical", nil, 0, 16 * day, true, -day},
		c{"first sighting in the future", "unknown", nil, -5 * day, 3 * day, false, 12 * day},
	)
	for _, tc := range cases {
		p := good()
		u := protocol.PendingUpdate{Name: "pkg", Severity: tc.severity, FirstSeen: now.Add(-tc.seen)}
		if tc.released != nil {
			r := now.Add(-*tc.released)
			u.ReleasedAt = &r
		}
		p.Patch.PendingSecurity, p.Patch.Pending = ptr(1), []protocol.PendingUpdate{u}
		got := Evaluate(base, p, Facts{Now: now, Allowed: allowed})
		if len(got) != 1 || got[0].Control != CtlSecurityUpdates || got[0].Subject != tc.severity {
			t.Errorf("%s: %+v, want one %s finding for %s", tc.name, got, CtlSecurityUpdates, tc.severity)
			continue
		}
		firstSeen := now.Add(-tc.server)
		dl := firstSeen.Add(graceOf(got[0], firstSeen))
		if quar := !now.Before(dl); quar != tc.quar || !dl.Equal(now.Add(tc.deadline)) {
			t.Errorf("%s: deadline %v (%v from now), past %v; want %v from now, past %v", tc.name, dl, dl.Sub(now), quar, tc.deadline, tc.quar)
		}
	}

	// Android: the patch level date is the installed bulletin; the next
	// month's bulletin is pending from the first of that month, severity
	// unknown, so held to the critical window.
	for _, c := range []struct {
		level    string
		findings int
		deadline time.Time
	}{
		{"2026-11-05", 0, time.Time{}}, // now is 2026-11-23: no later bulletin yet
		{"2026-11-01", 0, time.Time{}},
		{"2026-10-05", 1, time.Date(2026, 11, 16, 0, 0, 0, 0, time.UTC)}, // past
		{"2026-10-01", 1, time.Date(2026, 11, 16, 0, 0, 0, 0, time.UTC)},
	} {
		p := good()
		phone(&p)
		p.Patch.SecurityPatch = c.level
		got := Evaluate(base, p, Facts{Now: now, Allowed: allowed})
		if len(got) != c.findings || c.findings == 1 && (got[0].Control != CtlSecurityUpdates || got[0].Subject != "unknown" || !got[0].Deadline.Equal(c.deadline)) {
			t.Errorf("android patch level %s: %+v, want %d finding(s) due %v", c.level, got, c.findings, c.deadline)
		}
	}
	// Older than android_patch_max_age as well: both findings.
	p0 := good()
	phone(&p0)
	p0.Patch.SecurityPatch = "2026-05-01"
	if got := Evaluate(base, p0, Facts{Now: now, Allowed: allowed}); len(got) != 2 || !hasFailing(got, CtlAndroidPatch, "older than 90d") ||
		!hasFailing(got, CtlSecurityUpdates, "Android security bulletin 2026-06") {
		t.Errorf("android patch level half a year old: %+v", got)
	}

	// Several updates: one finding per severity, each with its earliest
	// deadline; an older agent's bare count is held to the critical
	// window under the same subject as unknown severity.
	p := good()
	p.Patch.PendingSecurity = ptr(3)
	p.Patch.Pending = []protocol.PendingUpdate{
		{Name: "a", Severity: "low", FirstSeen: now.Add(-80 * day)},
		{Name: "b", Severity: "low", FirstSeen: now.Add(-10 * day)},
		{Name: "c", Severity: "critical", FirstSeen: now},
	}
	got := Evaluate(base, p, Facts{Now: now, Allowed: allowed})
	if len(got) != 2 || got[0].Subject != "critical" || got[1].Subject != "low" || !got[1].Deadline.Equal(now.Add(10*day)) {
		t.Errorf("mixed severities: %+v", got)
	}
	p = good()
	p.Patch.PendingSecurity = ptr(2)
	got = Evaluate(base, p, Facts{Now: now, Allowed: allowed})
	if len(got) != 1 || got[0].Subject != protocol.SeverityUnknown || got[0].Grace != 15*day || got[0].Deadline != nil {
		t.Errorf("count only: %+v", got)
	}
}

// TestSignatureAgeByPlatform: the antimalware signature limit is the
// device's platform's. The baseline gives Macs (XProtect, which Apple
// updates weeks apart) 60 days and everything else Defender's 7; with no
// reported date only "running" is checked.
func TestSignatureAgeByPlatform(t *testing.T) {
	base, _ := profiles.Baseline()
	custom, err := profiles.Parse([]byte(`name: macs-45
controls:
  antimalware:
    required: true
    max_signature_age_by_platform: {darwin: 45d}
    grace: 24h
`))
	if err != nil {
		t.Fatal(err)
	}
	day := 24 * time.Hour
	mac := func(p *protocol.Posture) {
		p.OS = protocol.OSIdentity{Name: "macOS", Version: "15.7.2", Platform: "darwin/arm64"}
		p.Hygiene.Antimalware = []string{"XProtect"}
	}
	win := func(p *protocol.Posture) {
		p.OS = protocol.OSIdentity{Name: "Windows", Version: "10.0.22631", Platform: "windows/amd64"}
		p.Hygiene.Antimalware = []string{"Microsoft Defender Antivirus"}
	}
	for _, c := range []struct {
		name     string
		prof     *profiles.Profile
		platform func(*protocol.Posture)
		age      time.Duration // 0: no date reported
		running  bool
		finding  string // "" for none
	}{
		{"mac, 3 weeks", base, mac, 21 * day, true, ""},
		{"mac, 59 days", base, mac, 59 * day, true, ""},
		{"mac, 61 days", base, mac, 61 * day, true, "at most 60d allowed"},
		{"mac under its own 45d, 44 days", custom, mac, 44 * day, true, ""},
		{"mac under its own 45d, 46 days", custom, mac, 46 * day, true, "at most 45d allowed"},
		{"windows, 6 days", base, win, 6 * day, true, ""},
		{"windows, 8 days", base, win, 8 * day, true, "at most 7d allowed"},
		{"windows under the default, 8 days", custom, win, 8 * day, true, "at most 7d allowed"},
		{"linux, 8 days", base, func(*protocol.Posture) {}, 8 * day, true, "at most 7d allowed"},
		{"mac, no date", base, mac, 0, true, ""},
		{"windows, no date", base, win, 0, true, ""},
		{"mac, no date, not running", base, mac, 0, false, "no malicious-code protection"},
		// Not running is the finding, whatever the date.
		{"windows, old date, not running", base, win, 30 * day, false, "no malicious-code protection"},
	} {
		p := good()
		c.platform(&p)
		p.Hygiene.AntimalwareOn = ptr(c.running)
		if c.age > 0 {
			p.Hygiene.AntimalwareSignaturesAt = ptr(now.Add(-c.age))
		}
		var am []Result
		for _, r := range Evaluate(c.prof, p, Facts{Now: now, Allowed: allowed}) {
			if r.Control == CtlAntimalware {
				am = append(am, r)
			}
		}
		switch {
		case c.finding == "" && len(am) != 0:
			t.Errorf("%s: %+v, want no antimalware finding", c.name, am)
		case c.finding != "" && (len(am) != 1 || am[0].Unknown || !strings.Contains(am[0].Message, c.finding)):
			t.Errorf("%s: %+v, want one antimalware finding saying %q", c.name, am, c.finding)
		}
	}
}
