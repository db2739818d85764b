//go:build linux && !android

package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/cordon-mdm/cordon/agent"
	"github.com/cordon-mdm/cordon/agent/posture"
	"github.com/cordon-mdm/cordon/internal/dbustest"
	"github.com/cordon-mdm/cordon/internal/needs"
	"github.com/cordon-mdm/cordon/internal/testenv"
	"github.com/cordon-mdm/cordon/protocol"
)

// laptop is the machine TestBaselineOnARealLinuxAgent describes to the
// real Linux collectors. Each part is as real as this build host allows,
// and each can be flipped and restored:
//
//   - lock policy: KDE's kscreenlockerrc in the mock session user's home
//     (the collector's own file format; GNOME's gsettings would need a
//     user session bus with dconf);
//   - disk: a fixture sysfs and mountinfo for a LUKS2 root on device-mapper,
//     whose backing device is a real LUKS2 image read by a real
//     `cryptsetup luksDump` (a real dm-crypt mapping is impossible here: no
//     device-mapper);
//   - firewall: the real kernel's nftables, in a private network namespace
//     so the host's own firewall is neither read nor touched (needs root);
//   - antimalware: a real process named clamd (a copy of sleep), seen
//     through the real /proc;
//   - updates: the real apt-get resolving against a fixture apt state (a
//     file: repository labelled Debian-Security), so what is "pending" is
//     under the test's control and not this machine's.
type laptop struct {
	t     *testing.T
	dir   string
	netns string // /proc/PID/ns/net of the namespace holder
	av    *exec.Cmd
}

const luksRootMount = "22 1 254:0 / / rw,relatime - ext4 /dev/mapper/cryptroot rw\n"
const plainRootMount = "22 1 252:2 / / rw,relatime - ext4 /dev/vda2 rw\n"

// filteringRuleset drops unsolicited input: what NftFiltersInput calls a
// filtering firewall.
const filteringRuleset = `table inet filter {
	chain input {
		type filter hook input priority filter; policy drop;
		ct state established,related accept
		iif "lo" accept
	}
}
`

func newLaptop(t *testing.T) *laptop {
	needs.Tool(t, "cryptsetup", "cryptsetup-bin")
	needs.Tool(t, "nft", "nftables")
	needs.Tool(t, "nsenter", "util-linux")
	needs.Tool(t, "apt-get", "apt")
	if os.Geteuid() != 0 {
		needs.Missing(t, "the firewall part needs root for a network namespace")
	}
	l := &laptop{t: t, dir: t.TempDir()}
	l.writeFiles()
	l.makeLUKS()
	l.startNetns()
	l.nft("-f", l.path("firewall.nft"))
	l.startAV()
	l.apt("update")
	return l
}

func (l *laptop) path(p string) string { return filepath.Join(l.dir, p) }

func (l *laptop) write(p, content string) {
	l.t.Helper()
	if err := os.MkdirAll(filepath.Dir(l.path(p)), 0o755); err != nil {
		l.t.Fatal(err)
	}
	if err := os.WriteFile(l.path(p), []byte(content), 0o644); err != nil {
		l.t.Fatal(err)
	}
}

func (l *laptop) symlink(target, p string) {
	l.t.Helper()
	os.MkdirAll(filepath.Dir(l.path(p)), 0o755)
	if err := os.Symlink(target, l.path(p)); err != nil {
		l.t.Fatal(err)
	}
}

func (l *laptop) writeFiles() {
	// Root for the patch and hygiene collectors: the tools they look for,
	// Secure Boot enforcing, and the real /proc.
	l.write("root/usr/bin/apt-get", "")
	l.write("root/usr/sbin/nft", "")
	l.write("root/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c", "\x06\x00\x00\x00\x01")
	l.symlink("/proc", "root/proc")

	// Disk: dm-0 is a LUKS2 crypt target on vda2, mounted at /.
	l.write("disk/sys/block/dm-0/dm/uuid", "CRYPT-LUKS2-0f3c6ab1e2d44b6f9a5c0e1d2f3a4b5c-cryptroot\n")
	l.write("disk/sys/block/vda2/dev", "252:2\n")
	l.symlink("../../vda2", "disk/sys/block/dm-0/slaves/vda2")
	l.symlink(l.path("disk/sys/block/dm-0"), "disk/sys/dev/block/254:0")
	l.symlink(l.path("disk/sys/block/vda2"), "disk/sys/dev/block/252:2")
	l.write("disk/mountinfo", luksRootMount)

	// Lock policy: KDE locks after 5 minutes (+5 s grace).
	l.write("home/.config/kscreenlockerrc", "[Daemon]\nAutolock=true\nTimeout=5\n")

	l.write("firewall.nft", filteringRuleset)

	// apt: one package, installed at the version the security archive
	// offers, so nothing is pending.
	l.write("apt/repo/dists/bookworm-security/Release", "Origin: Debian\nLabel: Debian-Security\nSuite: stable-security\n"+
		"Codename: bookworm-security\nVersion: 12\nArchitectures: amd64 all\nComponents: main\n")
	l.write("apt/repo/dists/bookworm-security/main/binary-amd64/Packages", "Package: cordon-fixture-openssl\nPriority: optional\n"+
		"Section: libs\nMaintainer: Cordon <cordon@example.org>\nArchitecture: all\nVersion: 1.1\n"+
		"Filename: pool/cordon-fixture-openssl_1.1_all.deb\nSize: 1000\nDescription: fixture package\n")
	l.setInstalled("1.1")
	l.write("apt/etc/sources.list", "deb [trusted=yes] file:"+l.path("apt/repo")+" bookworm-security main\n")
	for _, d := range []string{"apt/state/lists/partial", "apt/cache/archives/partial", "apt/etc/sources.list.d", "apt/etc/preferences.d", "apt/log"} {
		os.MkdirAll(l.path(d), 0o755)
	}
	a := l.path("apt")
	l.write("apt/apt.conf", fmt.Sprintf(`Dir::State "%[1]s/state";
Dir::State::status "%[1]s/status";
Dir::Cache "%[1]s/cache";
Dir::Etc::SourceList "%[1]s/etc/sources.list";
Dir::Etc::SourceParts "%[1]s/etc/sources.list.d";
Dir::Etc::Preferences "%[1]s/etc/preferences";
Dir::Etc::PreferencesParts "%[1]s/etc/preferences.d";
Dir::Log "%[1]s/log";
Debug::NoLocking "1";
APT::Architecture "amd64";
`, a))
}

// setInstalled sets the installed version of the fixture package in apt's
// status file: 1.0 leaves the security archive's 1.1 pending.
func (l *laptop) setInstalled(version string) {
	l.write("apt/status", "Package: cordon-fixture-openssl\nStatus: install ok installed\nPriority: optional\nSection: libs\n"+
		"Maintainer: Cordon <cordon@example.org>\nArchitecture: all\nVersion: "+version+"\nDescription: fixture package\n")
}

func (l *laptop) makeLUKS() {
	l.t.Helper()
	img, key := l.path("luks.img"), l.path("passphrase")
	os.WriteFile(key, []byte("correct horse battery staple"), 0o600)
	os.WriteFile(img, nil, 0o600)
	if err := os.Truncate(img, 20<<20); err != nil {
		l.t.Fatal(err)
	}
	if out, err := exec.Command("cryptsetup", "luksFormat", "--batch-mode", "--type", "luks2", "--pbkdf", "pbkdf2",
		"--pbkdf-force-iterations", "1000", "--key-file", key, img).CombinedOutput(); err != nil {
		l.t.Fatalf("luksFormat: %v\n%s", err, out)
	}
	// The disk walk finds the header on /dev/vda2.
	l.symlink(img, "disk/dev/vda2")
}

func (l *laptop) startNetns() {
	l.t.Helper()
	holder := exec.Command("unshare", "--net", "sleep", "3600")
	if err := holder.Start(); err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(func() { holder.Process.Kill(); holder.Wait() })
	l.netns = "/proc/" + strconv.Itoa(holder.Process.Pid) + "/ns/net"
	self, _ := os.Readlink("/proc/self/ns/net")
	testenv.Eventually(l.t, 5*time.Second, "the private network namespace", func() bool {
		ns, err := os.Readlink(l.netns)
		return err == nil && ns != self
	})
}

func (l *laptop) nft(args ...string) {
	l.t.Helper()
	if out, err := exec.Command("nsenter", append([]string{"--net=" + l.netns, "nft"}, args...)...).CombinedOutput(); err != nil {
		l.t.Fatalf("nft %v: %v\n%s", args, err, out)
	}
}

func (l *laptop) apt(args ...string) {
	l.t.Helper()
	cmd := exec.Command("apt-get", append([]string{"-q"}, args...)...)
	cmd.Env = append(os.Environ(), "APT_CONFIG="+l.path("apt/apt.conf"))
	if out, err := cmd.CombinedOutput(); err != nil {
		l.t.Fatalf("apt-get %v: %v\n%s", args, err, out)
	}
}

// startAV runs a process whose comm is clamd: a copy of sleep under that
// name, which is what the collector sees of a running ClamAV daemon.
func (l *laptop) startAV() {
	l.t.Helper()
	bin := l.path("bin/clamd")
	if _, err := os.Stat(bin); err != nil {
		src, err := exec.LookPath("sleep")
		if err != nil {
			l.t.Fatal(err)
		}
		b, err := os.ReadFile(src)
		if err != nil {
			l.t.Fatal(err)
		}
		os.MkdirAll(filepath.Dir(bin), 0o755)
		if err := os.WriteFile(bin, b, 0o755); err != nil {
			l.t.Fatal(err)
		}
	}
	l.av = exec.Command(bin, "3600")
	if err := l.av.Start(); err != nil {
		l.t.Fatal(err)
	}
	av := l.av
	l.t.Cleanup(func() { av.Process.Kill(); av.Wait() })
}

func (l *laptop) stopAV() {
	l.av.Process.Kill()
	l.av.Wait()
}

// run is the collectors' tool runner: the real tools, with apt-get
// pointed at the fixture apt state and nft run inside the private network
// namespace.
func (l *laptop) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	env := []string{"LC_ALL=C", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	var cmd *exec.Cmd
	switch name {
	case "apt-get":
		env = append(env, "APT_CONFIG="+l.path("apt/apt.conf"))
		cmd = exec.CommandContext(ctx, name, args...)
	case "nft":
		cmd = exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + l.netns, "nft"}, args...)...)
	case "cryptsetup":
		cmd = exec.CommandContext(ctx, name, args...)
	default:
		// Nothing else is on this laptop (no ufw, no firewalld, no GNOME).
		return nil, fmt.Errorf("%s: not installed on the test laptop", name)
	}
	cmd.Env = env
	return cmd.Output()
}

func (l *laptop) root() posture.LinuxRoot {
	return posture.LinuxRoot{
		Root: l.path("root"), Sys: l.path("disk/sys"), Mountinfo: l.path("disk/mountinfo"), Dev: l.path("disk/dev"),
		Run:  l.run,
		Home: func(string) (string, error) { return l.path("home"), nil },
	}
}

// TestBaselineOnARealLinuxAgent: a real agent with its real Linux
// collectors, on a laptop that meets the CJIS baseline (locked session
// with a 5-minute lock policy, LUKS2 root, filtering firewall, ClamAV
// running, nothing pending), is compliant under the shipped cjis-baseline
// and allowed; root detection, which does not apply to a desktop, does
// not quarantine it. Each control's input flipped in turn yields exactly
// that control's finding, and restoring it clears the finding. No posture
// here is written by hand.
func TestBaselineOnARealLinuxAgent(t *testing.T) {
	l := newLaptop(t)
	bus := dbustest.Start(t)
	bus.Mock(t, "logind", "org.freedesktop.login1")
	var session dbus.ObjectPath
	if err := bus.Call(t, "org.freedesktop.login1", "/org/freedesktop/login1", "org.freedesktop.DBus.Mock.AddSession",
		"c1", "seat0", uint32(1000), "officer", true).Store(&session); err != nil {
		t.Fatal(err)
	}
	bus.Call(t, "org.freedesktop.login1", session, "org.freedesktop.login1.Session.SetLockedHint", true)

	e := testenv.New(t, "")
	dir := e.MustEnroll()
	// Every section is re-read twice a second, so a flip shows within a
	// few polls; apt-get resolves only the fixture's one package.
	iv := 500 * time.Millisecond
	newSys := func() *posture.System {
		return posture.NewSystem("test", posture.WithLinuxRoot(l.root()), posture.WithSightings(dir),
			posture.WithIntervals(posture.Intervals{Bluetooth: iv, Slow: iv, Patch: iv}))
	}
	sys := newSys()
	t.Cleanup(func() { sys.Close() })
	a := e.StartAgent(dir, agent.WithCollector(sys), agent.WithPollInterval(200*time.Millisecond))
	key := e.APIKey("laso")

	device := func() baselineDevice {
		var d baselineDevice
		e.Do("GET", "/api/v1/devices/"+a.DeviceID(), key, nil, &d)
		return d
	}
	access := func() string {
		var d accessJSON
		e.Do("GET", "/api/v1/devices/"+a.DeviceID()+"/access", key, nil, &d)
		return d.Decision
	}
	var last baselineDevice
	compliant := func(why string) {
		t.Helper()
		testenv.Eventually(t, 30*time.Second, "compliant: "+why, func() bool {
			last = device()
			return last.Compliance == "compliant" && len(last.Findings) == 0
		})
		if d := access(); d != "allow" {
			t.Fatalf("%s: access %q, want allow", why, d)
		}
	}
	// Eventually with a report of the last state on failure.
	defer func() {
		if t.Failed() {
			t.Logf("last device: compliance %s, findings %+v\nhygiene %+v\ndisk %+v\nlock policy %+v\npatch %+v", last.Compliance, last.Findings,
				last.Posture.Hygiene, last.Posture.Disk, last.Posture.LockPolicy, last.Posture.Patch)
		}
	}()

	compliant("the laptop as set up")
	p := last.Posture
	if gaps := p.Unexplained(); len(gaps) > 0 {
		t.Errorf("values missing without a reason: %v", gaps)
	}
	if p.Lock == nil || p.Lock.State != protocol.LockLocked {
		t.Errorf("lock %+v, want the mock session locked", p.Lock)
	}
	if lp := p.LockPolicy; lp == nil || lp.TimeoutSeconds == nil || *lp.TimeoutSeconds != 305 {
		t.Errorf("lock policy %+v, want KDE's 5 minutes + 5 s", lp)
	}
	if d := p.Disk; d == nil || d.State != protocol.DiskEncrypted || d.Scheme != "luks2" || d.Cipher != "aes-xts-plain64" || d.KeyBits != 512 {
		t.Errorf("disk %+v, want the LUKS2 header as cryptsetup reads it", d)
	}
	h := p.Hygiene
	if h == nil || h.Firewall != "nftables" || !slices.Equal(h.Antimalware, []string{"ClamAV"}) || h.RootedSuspected != nil ||
		h.NotApplicable["rooted_suspected"] == "" || h.Unknown["rooted_suspected"] != "" {
		t.Errorf("hygiene %+v: want nftables, ClamAV, and root detection stated not applicable", h)
	}
	if pa := p.Patch; pa == nil || pa.PendingSecurity == nil || *pa.PendingSecurity != 0 || len(pa.Pending) != 0 {
		t.Errorf("patch %+v, want nothing pending", pa)
	}

	flips := []struct {
		name, control   string
		unknown         bool
		msg             string
		flip, restore   func()
		wantQuarantined bool
	}{
		{name: "lock policy 60 minutes", control: "session_lock", msg: "1h0m5s",
			flip:    func() { l.write("home/.config/kscreenlockerrc", "[Daemon]\nTimeout=60\n") },
			restore: func() { l.write("home/.config/kscreenlockerrc", "[Daemon]\nAutolock=true\nTimeout=5\n") }},
		{name: "lock policy off", control: "session_lock", msg: "off",
			flip:    func() { l.write("home/.config/kscreenlockerrc", "[Daemon]\nAutolock=false\n") },
			restore: func() { l.write("home/.config/kscreenlockerrc", "[Daemon]\nAutolock=true\nTimeout=5\n") }},
		{name: "plain root", control: "disk_encryption", msg: "unencrypted", wantQuarantined: true,
			flip:    func() { l.write("disk/mountinfo", plainRootMount) },
			restore: func() { l.write("disk/mountinfo", luksRootMount) }},
		{name: "firewall off", control: "firewall", msg: "firewall is off",
			flip:    func() { l.nft("flush", "ruleset") },
			restore: func() { l.nft("-f", l.path("firewall.nft")) }},
		{name: "antimalware gone", control: "antimalware", msg: "no malicious-code protection",
			flip: l.stopAV, restore: l.startAV},
		{name: "security update pending", control: "patches.security_updates", msg: "cordon-fixture-openssl",
			flip:    func() { l.setInstalled("1.0") },
			restore: func() { l.setInstalled("1.1") }},
	}
	for _, f := range flips {
		f.flip()
		testenv.Eventually(t, 30*time.Second, f.name+": a "+f.control+" finding", func() bool {
			last = device()
			return slices.ContainsFunc(last.Findings, func(x baselineFinding) bool { return x.Control == f.control })
		})
		// Give the other sections a few refreshes to show anything else.
		time.Sleep(2 * time.Second)
		last = device()
		if len(last.Findings) != 1 || last.Findings[0].Control != f.control || last.Findings[0].Unknown != f.unknown ||
			!strings.Contains(last.Findings[0].Message, f.msg) {
			t.Fatalf("%s: findings %+v, want exactly one %s finding mentioning %q", f.name, last.Findings, f.control, f.msg)
		}
		want, decision := "noncompliant", "allow" // in grace
		if f.wantQuarantined {
			want, decision = "quarantined", "deny"
		}
		if last.Compliance != want || access() != decision {
			t.Fatalf("%s: compliance %s access %s, want %s and %s", f.name, last.Compliance, access(), want, decision)
		}
		if f.control == "patches.security_updates" {
			pend := last.Posture.Patch.Pending
			if len(pend) != 1 || pend[0].Name != "cordon-fixture-openssl" || pend[0].Severity != protocol.SeverityUnknown || last.Findings[0].Subject != "unknown" {
				t.Fatalf("pending %+v, finding %+v: want apt's update, severity unknown", pend, last.Findings[0])
			}
			// The agent keeps its first sighting in the state dir, and a
			// restarted agent (a new process's collector over the same
			// dir) reports the same date, not its own start.
			first := pend[0].FirstSeen
			if seen, err := dir.LoadSightings(); err != nil || !seen["cordon-fixture-openssl"].Equal(first) {
				t.Fatalf("sightings in the state dir %v (%v), reported %v", seen, err, first)
			}
			a.Stop()
			sys.Close()
			restarted := time.Now()
			sys = newSys()
			a = e.StartAgent(dir, agent.WithCollector(sys), agent.WithPollInterval(200*time.Millisecond))
			testenv.Eventually(t, 30*time.Second, "a report from the restarted agent", func() bool {
				last = device()
				return last.Posture.CollectedAt.After(restarted) && last.Posture.Patch != nil && len(last.Posture.Patch.Pending) == 1
			})
			if got := last.Posture.Patch.Pending[0].FirstSeen; !got.Equal(first) {
				t.Fatalf("after a restart the update was first seen %v, want %v", got, first)
			}
		}
		f.restore()
		compliant("after restoring " + f.name)
	}
	if seen, _ := dir.LoadSightings(); len(seen) != 0 {
		t.Errorf("the installed update is still in the agent's sightings: %v", seen)
	}
}
