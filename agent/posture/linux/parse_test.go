package linux

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestParseAptSimulate(t *testing.T) {
	// Recorded on a Debian 12 host: 80 upgrades, 20 from Debian-Security.
	b, err := os.ReadFile("testdata/apt-simulate-debian12.txt")
	if err != nil {
		t.Fatal(err)
	}
	if total, sec := ParseAptSimulate(b); total != 80 || sec != 20 {
		t.Fatalf("total %d security %d, want 80 and 20", total, sec)
	}
	ubuntu := "Inst libssl3 [3.0.2-0ubuntu1.10] (3.0.2-0ubuntu1.12 Ubuntu:22.04/jammy-updates, Ubuntu:22.04/jammy-security [amd64])\n" +
		"Inst tzdata [2023c-0ubuntu0.22.04.1] (2024a-0ubuntu0.22.04 Ubuntu:22.04/jammy-updates [all])\n" +
		"Conf libssl3 (3.0.2-0ubuntu1.12 Ubuntu:22.04/jammy-updates [amd64])\n"
	if total, sec := ParseAptSimulate([]byte(ubuntu)); total != 2 || sec != 1 {
		t.Fatalf("ubuntu: total %d security %d", total, sec)
	}
	if names := AptSecurityUpdates([]byte(ubuntu)); !slices.Equal(names, []string{"libssl3"}) {
		t.Fatalf("ubuntu security updates %v", names)
	}
	if names := AptSecurityUpdates(b); len(names) != 20 {
		t.Fatalf("debian: %d security updates named, want 20", len(names))
	}
}

func TestParseAptHistory(t *testing.T) {
	h := "\nStart-Date: 2025-06-24  14:36:20\nCommandline: apt-get upgrade\nEnd-Date: 2025-06-24  14:36:25\n\n" +
		"Start-Date: 2025-07-01  09:00:00\nEnd-Date: 2025-07-01  09:01:02\n"
	got, ok := ParseAptHistory([]byte(h))
	want := time.Date(2025, 7, 1, 9, 1, 2, 0, time.Local).UTC()
	if !ok || !got.Equal(want) {
		t.Fatalf("got %v %v, want %v", got, ok, want)
	}
	if _, ok := ParseAptHistory([]byte("Start-Date: 2025-07-01  09:00:00\n")); ok {
		t.Fatal("a run that never ended is not an update")
	}
}

func TestParseDnf(t *testing.T) {
	hist := "ID     | Command line             | Date and time    | Action(s)      | Altered\n" +
		"-------------------------------------------------------------------------------\n" +
		"    12 | upgrade -y               | 2025-05-02 08:14 | I, U           |       31\n" +
		"    11 | install vim              | 2025-04-30 17:01 | Install        |        2\n"
	got, ok := ParseDnfHistory([]byte(hist))
	if !ok || !got.Equal(time.Date(2025, 5, 2, 8, 14, 0, 0, time.Local).UTC()) {
		t.Fatalf("dnf history: %v %v", got, ok)
	}
	sec := "FEDORA-2025-1a2b3c4d5e important/Sec. openssl-1:3.2.2-3.fc40.x86_64\n" +
		"FEDORA-2025-9f8e7d6c5b moderate/Sec.  curl-8.6.0-8.fc40.x86_64\n"
	if n := countDnfLines([]byte(sec)); n != 2 {
		t.Fatalf("security lines %d", n)
	}
	seen := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	got2 := ParseDnfSecurity([]byte(sec+"RHSA-2025:1234 Sec. kernel-6.1\n"), seen)
	if len(got2) != 3 || got2[0].Name != "openssl-1:3.2.2-3.fc40.x86_64" || got2[0].Severity != "high" ||
		got2[1].Severity != "medium" || got2[2].Severity != "unknown" || !got2[2].FirstSeen.Equal(seen) {
		t.Fatalf("dnf security updates %+v", got2)
	}
}

func TestGnomeAndKDELockPolicy(t *testing.T) {
	for _, c := range []struct {
		idle, enabled, delay string
		on                   bool
		timeout              int64
		err                  bool
	}{
		{"uint32 300", "true", "uint32 0", true, 300, false},
		{"uint32 600", "true", "uint32 30", true, 630, false},
		{"uint32 0", "true", "uint32 0", false, 0, false}, // never idles, so never locks
		{"uint32 300", "false", "uint32 0", false, 0, false},
		{"", "true", "uint32 0", false, 0, true},
		{"uint32 300", "maybe", "uint32 0", false, 0, true},
	} {
		on, timeout, err := ParseGnomeLock(c.idle, c.enabled, c.delay)
		if (err != nil) != c.err || on != c.on || timeout != c.timeout {
			t.Errorf("%+v: got %v %d %v", c, on, timeout, err)
		}
	}
	for _, c := range []struct {
		rc      string
		on      bool
		timeout int64
	}{
		{"", true, 305}, // KDE's defaults: 5 minutes plus 5 s grace
		{"[Daemon]\nTimeout=10\nLockGrace=0\n", true, 600},
		{"[Daemon]\nAutolock=false\n", false, 0},
		{"[Greeter]\nTimeout=1\n", true, 305},
	} {
		on, timeout := ParseKScreenLocker([]byte(c.rc))
		if on != c.on || timeout != c.timeout {
			t.Errorf("%q: got %v %d", c.rc, on, timeout)
		}
	}
}

func TestLockPolicyReadsAsTheSessionUser(t *testing.T) {
	var calls [][]string
	run := func(_ context.Context, name string, args ...string) ([]byte, error) {
		calls = append(calls, append([]string{name}, args...))
		switch args[len(args)-1] {
		case "idle-delay":
			return []byte("uint32 900\n"), nil
		case "lock-enabled":
			return []byte("true\n"), nil
		case "lock-delay":
			return []byte("uint32 0\n"), nil
		}
		return nil, errors.New("unexpected")
	}
	p := LockPolicy(context.Background(), Session{User: "officer", UID: 1000}, t.TempDir(), run)
	if p.Enabled == nil || !*p.Enabled || p.TimeoutSeconds == nil || *p.TimeoutSeconds != 900 {
		t.Fatalf("policy %+v", p)
	}
	if len(calls) != 3 || !slices.Equal(calls[0][:4], []string{"runuser", "-u", "officer", "--"}) ||
		!slices.Contains(calls[0], "DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/1000/bus") {
		t.Fatalf("gsettings not run as the session user: %q", calls)
	}
	failing := func(context.Context, string, ...string) ([]byte, error) { return nil, errors.New("exit status 1") }
	p = LockPolicy(context.Background(), Session{User: "officer", UID: 1000}, t.TempDir(), failing)
	if p.Enabled != nil || p.Unknown["enabled"] == "" || p.Unknown["timeout_seconds"] == "" {
		t.Fatalf("gsettings failing: %+v", p)
	}
	if p = LockPolicy(context.Background(), Session{}, "", failing); p.Unknown["enabled"] == "" {
		t.Fatalf("no session: %+v", p)
	}
}

func TestNftFiltersInput(t *testing.T) {
	dropPolicy := "table inet filter {\n\tchain input {\n\t\ttype filter hook input priority filter; policy drop;\n\t\tct state established,related accept\n\t}\n}\n"
	acceptEmpty := "table inet filter {\n\tchain input {\n\t\ttype filter hook input priority filter; policy accept;\n\t}\n\tchain forward {\n\t\ttype filter hook forward priority filter; policy accept;\n\t}\n}\n"
	acceptRules := "table inet filter {\n\tchain input {\n\t\ttype filter hook input priority filter; policy accept;\n\t\ttcp dport 22 drop\n\t}\n}\n"
	if !NftFiltersInput(dropPolicy) || NftFiltersInput(acceptEmpty) || !NftFiltersInput(acceptRules) || NftFiltersInput("") {
		t.Fatal("nft ruleset misread")
	}
}

func TestHygieneSources(t *testing.T) {
	root := t.TempDir()
	for pid, comm := range map[string]string{"1": "systemd", "812": "clamd", "900": "falcon-sensor", "901": "clamd"} {
		os.MkdirAll(filepath.Join(root, "proc", pid), 0o755)
		os.WriteFile(filepath.Join(root, "proc", pid, "comm"), []byte(comm+"\n"), 0o644)
	}
	found, err := RunningAntimalware(filepath.Join(root, "proc"))
	if err != nil || !slices.Equal(found, []string{"ClamAV", "CrowdStrike Falcon"}) {
		t.Fatalf("antimalware %v %v", found, err)
	}

	// Legacy BIOS: no Secure Boot. UEFI with the variable: its value.
	if on, reason := SecureBoot(root); on || reason != "" {
		t.Fatalf("BIOS: %v %q", on, reason)
	}
	os.MkdirAll(filepath.Join(root, "sys/firmware/efi/efivars"), 0o755)
	if _, reason := SecureBoot(root); reason == "" {
		t.Fatal("UEFI without the variable must be unknown")
	}
	os.WriteFile(filepath.Join(root, secureBootVar), []byte{6, 0, 0, 0, 1}, 0o644)
	if on, reason := SecureBoot(root); !on || reason != "" {
		t.Fatalf("enforcing: %v %q", on, reason)
	}

	// No firewall tool at all: unknown with the reason, never "off".
	none := func(context.Context, string, ...string) ([]byte, error) { return nil, errors.New("not found") }
	h := Hygiene(context.Background(), Paths{Root: root}, none)
	if h.FirewallOn != nil || h.Unknown["firewall_on"] == "" || h.NotApplicable["rooted_suspected"] == "" || h.Unknown["rooted_suspected"] != "" {
		t.Fatalf("hygiene %+v", h)
	}
	os.MkdirAll(filepath.Join(root, "usr/sbin"), 0o755)
	os.WriteFile(filepath.Join(root, "usr/sbin/ufw"), nil, 0o755)
	ufw := func(_ context.Context, name string, _ ...string) ([]byte, error) {
		return []byte("Status: active\n\nTo                         Action      From\n"), nil
	}
	if h = Hygiene(context.Background(), Paths{Root: root}, ufw); h.FirewallOn == nil || !*h.FirewallOn || h.Firewall != "ufw" {
		t.Fatalf("ufw active: %+v", h)
	}
}

func TestPatchWithoutPackageManager(t *testing.T) {
	p := Patch(context.Background(), Paths{Root: t.TempDir()}, nil, time.Now())
	for _, f := range []string{"pending_security", "last_update", "reboot_required"} {
		if p.Unknown[f] == "" {
			t.Errorf("%s has no reason", f)
		}
	}
	if p.PendingSecurity != nil || p.RebootRequired != nil {
		t.Fatalf("values without a source: %+v", p)
	}
}

func TestPatchApt(t *testing.T) {
	root := t.TempDir()
	for _, f := range []string{"usr/bin/apt-get", "var/run/reboot-required"} {
		os.MkdirAll(filepath.Join(root, filepath.Dir(f)), 0o755)
		os.WriteFile(filepath.Join(root, f), nil, 0o644)
	}
	os.MkdirAll(filepath.Join(root, "var/log/apt"), 0o755)
	os.WriteFile(filepath.Join(root, "var/log/apt/history.log"), []byte("End-Date: 2025-07-01  09:01:02\n"), 0o644)
	sim, _ := os.ReadFile("testdata/apt-simulate-debian12.txt")
	run := func(_ context.Context, name string, args ...string) ([]byte, error) {
		if name != "apt-get" || !slices.Contains(args, "-s") {
			return nil, errors.New("unexpected command")
		}
		return sim, nil
	}
	p := Patch(context.Background(), Paths{Root: root}, run, time.Now())
	if p.PendingSecurity == nil || *p.PendingSecurity != 20 || p.PendingTotal == nil || *p.PendingTotal != 80 ||
		p.LastUpdate == nil || p.RebootRequired == nil || !*p.RebootRequired || p.CheckedAt == nil || len(p.Unknown) != 0 {
		t.Fatalf("apt patch level %+v", p)
	}
	if len(p.Pending) != 20 || p.Pending[0].Severity != "unknown" || p.Pending[0].ReleasedAt != nil || p.Pending[0].FirstSeen.IsZero() {
		t.Fatalf("apt pending updates %+v", p.Pending)
	}
}

func FuzzParseAptSimulate(f *testing.F) {
	f.Add([]byte("Inst a [1] (2 Debian-Security:12/stable-security [amd64])\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, sec := ParseAptSimulate(b)
		if names := AptSecurityUpdates(b); len(names) > sec {
			t.Fatalf("%d security updates named, %d counted", len(names), sec)
		}
		ParseAptHistory(b)
		ParseDnfHistory(b)
		for _, u := range ParseDnfSecurity(b, time.Unix(1, 0)) {
			if u.Name == "" || u.Severity == "" {
				t.Fatalf("update without name or severity: %+v", u)
			}
		}
	})
}

func FuzzParseKScreenLocker(f *testing.F) {
	f.Add([]byte("[Daemon]\nTimeout=10\n"))
	f.Fuzz(func(t *testing.T, b []byte) { ParseKScreenLocker(b); NftFiltersInput(string(b)) })
}
