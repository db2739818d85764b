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
		{"patches unknown", func(p *protocol.Posture) { p.Patch.PendingSecurity = nil }, CtlSecurityUpdates, true, "could not tell"},
		{"android patch old", func(p *protocol.Posture) {
			p.OS.Platform, p.Hygiene.FirewallOn, p.Patch.SecurityPatch = "android/arm64", nil, "2026-05-01"
		}, CtlAndroidPatch, false, "older than 90d"},
		{"android patch unknown", func(p *protocol.Posture) { p.OS.Platform, p.Patch.SecurityPatch = "android/arm64", "" }, CtlAndroidPatch, true, "could not tell"},
		{"firewall off", func(p *protocol.Posture) { p.Hygiene.FirewallOn = ptr(false) }, CtlFirewall, false, "firewall is off"},
		{"firewall unknown", func(p *protocol.Posture) { p.Hygiene.FirewallOn = nil }, CtlFirewall, true, "could not tell"},
		{"no antimalware", func(p *protocol.Posture) { p.Hygiene.AntimalwareOn = ptr(false) }, CtlAntimalware, false, "malicious-code"},
		{"rooted", func(p *protocol.Posture) {
			p.Hygiene.RootedSuspected, p.Hygiene.RootedEvidence = ptr(true), []string{"/system/xbin/su"}
		}, CtlNotRooted, false, "/system/xbin/su"},
		{"root unknown", func(p *protocol.Posture) { p.Hygiene.RootedSuspected = nil }, CtlNotRooted, true, "could not tell"},
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
  patches: {security_updates_within: 15d, min_os_version: {"Debian GNU/Linux": "13"}}
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
