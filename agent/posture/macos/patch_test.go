package macos

import (
	"errors"
	"io/fs"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/protocol"
)

func TestParseSwVers(t *testing.T) {
	tests := []struct {
		fixture string
		want    SwVers
	}{
		{"sw_vers_sonoma.txt", SwVers{ProductName: "macOS", ProductVersion: "14.2.1", BuildVersion: "23C71"}},
		{"sw_vers_rsr.txt", SwVers{ProductName: "macOS", ProductVersion: "13.4.1", ProductVersionExtra: "(c)", BuildVersion: "22F770820d"}},
		{"sw_vers_mojave.txt", SwVers{ProductName: "Mac OS X", ProductVersion: "10.14.6", BuildVersion: "18G9323"}},
	}
	for _, tt := range tests {
		got, err := ParseSwVers(string(fixture(t, tt.fixture)))
		if err != nil || got != tt.want {
			t.Errorf("%s: got %+v, %v", tt.fixture, got, err)
		}
	}
	if _, err := ParseSwVers("sw_vers: command not found"); err == nil {
		t.Error("garbage accepted")
	}
}

func TestIdentity(t *testing.T) {
	id := Identity(out(CmdSwVers, fixture(t, "sw_vers_rsr.txt")), out("uname -r", []byte("22.5.0\n")))
	if id.Name != "macOS" || id.Version != "13.4.1 (c)" || id.Build != "22F770820d" || id.Kernel != "22.5.0" || id.Error != "" {
		t.Errorf("got %+v", id)
	}
	id = Identity(Output{Command: CmdSwVers, Err: errExit1}, Output{})
	if id.Error == "" || id.Name != "" {
		t.Errorf("failed sw_vers: got %+v", id)
	}
}

func TestParseSoftwareUpdate(t *testing.T) {
	tests := []struct {
		name     string
		stdout   string
		stderr   string
		want     []Update
		security int
		wantErr  bool
	}{
		{name: "none", stdout: "softwareupdate_none.stdout", stderr: "softwareupdate_none.stderr"},
		{name: "sonoma", stdout: "softwareupdate_sonoma.stdout", want: []Update{
			{Label: "macOS Sonoma 14.2.1-23C71", Title: "macOS Sonoma 14.2.1", Version: "14.2.1", Recommended: true, Action: "restart"},
			{Label: "Safari17.2.1VenturaAuto-17.2.1", Title: "Safari", Version: "17.2.1", Recommended: true},
			{Label: "Command Line Tools for Xcode-15.1", Title: "Command Line Tools for Xcode", Version: "15.1", Recommended: true},
		}, security: 1},
		{name: "rapid security response", stdout: "softwareupdate_rsr.stdout", want: []Update{
			{Label: "macOS Security Response 13.4.1 (c)-22F770820d", Title: "macOS Ventura 13.4.1 (c)", Version: "13.4.1 (c)", Recommended: true, Action: "restart"},
			{Label: "macOS Sonoma 14.2.1-23C71", Title: "macOS Sonoma 14.2.1", Version: "14.2.1", Recommended: true, Action: "restart"},
		}, security: 2},
		{name: "mojave format", stdout: "softwareupdate_mojave.stdout", want: []Update{
			{Label: "Security Update 2020-001-10.14.6", Title: "Security Update 2020-001 (10.14.6), 1622188K", Recommended: true, Action: "restart"},
			{Label: "Safari13.0.5MojaveAuto-13.0.5", Title: "Safari (13.0.5), 67199K", Recommended: true},
		}, security: 1},
		{name: "offline", stderr: "softwareupdate_offline.stderr", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o Output
			if tt.stdout != "" {
				o.Stdout = fixture(t, tt.stdout)
			}
			if tt.stderr != "" {
				o.Stderr = fixture(t, tt.stderr)
			}
			got, err := ParseSoftwareUpdate(o.combined())
			if (err != nil) != tt.wantErr {
				t.Fatalf("err %v, want error %v", err, tt.wantErr)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d updates %+v, want %d", len(got), got, len(tt.want))
			}
			sec := 0
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("[%d] got %+v, want %+v", i, got[i], tt.want[i])
				}
				if got[i].SecurityRelevant() {
					sec++
				}
			}
			if sec != tt.security {
				t.Errorf("%d security-relevant, want %d", sec, tt.security)
			}
		})
	}
}

func TestSecurityRelevant(t *testing.T) {
	tests := []struct {
		u    Update
		want bool
	}{
		{Update{Label: "Background Security Improvement 26.1 (a)", Title: "macOS Tahoe 26.1 (a)"}, true},
		{Update{Label: "macOS Ventura 13.6.3-22G436", Title: "macOS Ventura 13.6.3", Action: "restart"}, true},
		{Update{Label: "BridgeOSUpdateCustomer", Title: "Firmware Update", Action: "shut down"}, false},
		{Update{Label: "Safari17.2.1VenturaAuto-17.2.1", Title: "Safari"}, false},
		{Update{Label: "macOS Sonoma 14.2.1-23C71", Title: "macOS Sonoma 14.2.1"}, false},
	}
	for _, tt := range tests {
		if got := tt.u.SecurityRelevant(); got != tt.want {
			t.Errorf("%+v: got %v", tt.u, got)
		}
	}
}

func TestPatch(t *testing.T) {
	now := time.Date(2024, 1, 8, 9, 0, 0, 0, time.UTC)
	sw := out(CmdSwVers, fixture(t, "sw_vers_sonoma.txt"))
	hist := out(InstallHistory, fixture(t, "InstallHistory.plist"))
	lastUpdate := time.Date(2023, 12, 19, 20, 45, 12, 0, time.UTC)

	p := Patch(sw, out(CmdSoftwareUpdate, fixture(t, "softwareupdate_sonoma.stdout")), hist, now)
	if p.SecurityPatch != "14.2.1" || deref(p.PendingTotal) != 3 || deref(p.PendingSecurity) != 1 ||
		deref(p.RebootRequired) != true || p.CheckedAt == nil || !p.CheckedAt.Equal(now) ||
		p.LastUpdate == nil || !p.LastUpdate.Equal(lastUpdate) || len(p.Unknown) != 0 {
		t.Errorf("pending: got %+v", p)
	}
	valid(t, protocol.Posture{Patch: p})

	none := Output{Command: CmdSoftwareUpdate, Stdout: fixture(t, "softwareupdate_none.stdout"), Stderr: fixture(t, "softwareupdate_none.stderr")}
	p = Patch(sw, none, hist, now)
	if deref(p.PendingTotal) != 0 || deref(p.PendingSecurity) != 0 || deref(p.RebootRequired) != false || len(p.Unknown) != 0 {
		t.Errorf("none: got %+v", p)
	}

	// Every failure leaves its values nil and says why.
	offline := Output{Command: CmdSoftwareUpdate, Stderr: fixture(t, "softwareupdate_offline.stderr")}
	p = Patch(Output{Command: CmdSwVers, Err: errors.New("signal: killed")}, offline,
		Output{Command: InstallHistory, Err: &fs.PathError{Op: "open", Path: InstallHistory, Err: fs.ErrNotExist}}, now)
	if p.PendingTotal != nil || p.PendingSecurity != nil || p.RebootRequired != nil || p.CheckedAt != nil || p.LastUpdate != nil || p.SecurityPatch != "" {
		t.Errorf("failures: got values %+v", p)
	}
	hasUnknown(t, p.Provenance, "security_patch", "pending_total", "pending_security", "reboot_required", "last_update")
	valid(t, protocol.Posture{Patch: p})

	p = Patch(sw, Output{Command: CmdSoftwareUpdate, Err: errExit1, Stderr: []byte("softwareupdate: must be run as root")},
		out(InstallHistory, []byte(plistHead+"<array></array></plist>")), now)
	hasUnknown(t, p.Provenance, "pending_total", "pending_security", "reboot_required", "last_update")
}
