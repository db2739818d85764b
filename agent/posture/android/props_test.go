package android

import (
	"errors"
	"io/fs"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/protocol"
)

func props(kv ...string) Props {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return Props{Values: m}
}

// checkReport runs the protocol's own validation over the sections, so a
// reason or list that would get a report refused fails here first.
func checkReport(t *testing.T, p protocol.Posture) {
	t.Helper()
	p.CollectedAt = time.Now()
	p.OS.Platform = "android/arm64"
	if err := p.Check(); err != nil {
		t.Fatalf("report refused: %v", err)
	}
}

func TestDisk(t *testing.T) {
	tests := []struct {
		name           string
		p              Props
		state, scheme  string
		cipher         string
		unknown        []string
		reasonContains string
	}{
		{"fbe", props("ro.crypto.state", "encrypted", "ro.crypto.type", "file", "ro.crypto.volume.contents_mode", "aes-256-xts"),
			protocol.DiskEncrypted, "android-fbe", "aes-256-xts", nil, ""},
		{"fde no cipher", props("ro.crypto.state", "encrypted", "ro.crypto.type", "block"),
			protocol.DiskEncrypted, "android-fde", "", []string{"cipher"}, ""},
		{"encrypted no type", props("ro.crypto.state", "encrypted"),
			protocol.DiskEncrypted, "", "", []string{"scheme", "cipher"}, "ro.crypto.type"},
		{"odd type", props("ro.crypto.state", "encrypted", "ro.crypto.type", "cloud"),
			protocol.DiskEncrypted, "", "", []string{"scheme", "cipher"}, `"cloud"`},
		{"unencrypted", props("ro.crypto.state", "unencrypted", "ro.crypto.type", "file"),
			protocol.DiskUnencrypted, "", "", nil, ""},
		{"unsupported", props("ro.crypto.state", "unsupported"), protocol.DiskUnencrypted, "", "", nil, ""},
		{"missing", props(), protocol.DiskUnknown, "", "", []string{"state"}, "did not show ro.crypto.state"},
		{"odd state", props("ro.crypto.state", strings.Repeat("x", 1000)), protocol.DiskUnknown, "", "", []string{"state"}, "xxx..."},
		{"getprop failed", Props{Err: errors.New("exit status 1")}, protocol.DiskUnknown, "", "", []string{"state"}, "exit status 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Disk(tt.p)
			if d.State != tt.state || d.Scheme != tt.scheme || d.Cipher != tt.cipher || d.Source != GetpropSource || d.Volume != "/data" {
				t.Errorf("got %+v", d)
			}
			if got := slices.Sorted(maps.Keys(d.Unknown)); !slices.Equal(got, slices.Sorted(slices.Values(tt.unknown))) {
				t.Errorf("unknown = %v, want %v", d.Unknown, tt.unknown)
			}
			if tt.reasonContains != "" && !anyContains(d.Unknown, tt.reasonContains) {
				t.Errorf("no reason contains %q: %v", tt.reasonContains, d.Unknown)
			}
			checkReport(t, protocol.Posture{Disk: d})
		})
	}
}

func TestPatch(t *testing.T) {
	p := Patch(props("ro.build.version.security_patch", "2025-10-05"))
	if p.SecurityPatch != "2025-10-05" || p.Source != GetpropSource {
		t.Errorf("got %+v", p)
	}
	for _, f := range []string{"pending_security", "pending_total", "last_update", "reboot_required"} {
		if p.Unknown[f] != NotReadableByApp {
			t.Errorf("unknown[%s] = %q", f, p.Unknown[f])
		}
	}
	if _, ok := p.Unknown["security_patch"]; ok {
		t.Errorf("security_patch unknown: %v", p.Unknown)
	}
	checkReport(t, protocol.Posture{Patch: p})

	for _, in := range []Props{props(), props("ro.build.version.security_patch", ""), props("ro.build.version.security_patch", "October"), {Err: errors.New("boom")}} {
		p := Patch(in)
		if p.SecurityPatch != "" || p.Unknown["security_patch"] == "" {
			t.Errorf("%v: got %+v", in, p)
		}
		checkReport(t, protocol.Posture{Patch: p})
	}
}

func TestHygiene(t *testing.T) {
	clean := []string{"ro.boot.verifiedbootstate", "green", "ro.boot.flash.locked", "1", "ro.debuggable", "0", "ro.build.tags", "release-keys"}
	tests := []struct {
		name       string
		p          Props
		su         []string
		secureBoot *bool
		rooted     *bool
		evidence   []string
		unknown    []string
	}{
		{"clean", props(clean...), nil, ptr(true), ptr(false), nil, nil},
		{"yellow", props("ro.boot.verifiedbootstate", "yellow", "ro.debuggable", "0", "ro.build.tags", "release-keys"),
			nil, ptr(false), ptr(false), nil, nil},
		{"red", props("ro.boot.verifiedbootstate", "red", "ro.debuggable", "0", "ro.build.tags", "release-keys"),
			nil, ptr(false), ptr(false), nil, nil},
		{"unlocked", props("ro.boot.verifiedbootstate", "orange", "ro.boot.flash.locked", "0", "ro.debuggable", "0", "ro.build.tags", "release-keys"),
			nil, ptr(false), ptr(true), []string{"bootloader unlocked"}, nil},
		{"flash unlocked only", props("ro.boot.verifiedbootstate", "green", "ro.boot.flash.locked", "0", "ro.build.tags", "release-keys"),
			nil, ptr(true), ptr(true), []string{"bootloader unlocked"}, nil},
		{"userdebug test-keys su", props("ro.boot.verifiedbootstate", "orange", "ro.debuggable", "1", "ro.build.tags", "dev-keys,test-keys"),
			[]string{"su at /system/xbin/su"}, ptr(false), ptr(true),
			[]string{"bootloader unlocked", "ro.debuggable=1 (a debuggable build)", "build signed with test-keys", "su at /system/xbin/su"}, nil},
		{"no verified boot prop", props("ro.debuggable", "0", "ro.build.tags", "release-keys"),
			nil, nil, ptr(false), nil, []string{"secure_boot"}},
		{"odd verified boot", props("ro.boot.verifiedbootstate", "purple", "ro.build.tags", "release-keys"),
			nil, nil, ptr(false), nil, []string{"secure_boot"}},
		{"getprop failed", Props{Err: errors.New("boom")}, nil, nil, nil, nil, []string{"secure_boot", "rooted_suspected"}},
		{"getprop failed su found", Props{Err: errors.New("boom")}, []string{"su at /sbin/su"}, nil, ptr(true),
			[]string{"su at /sbin/su"}, []string{"secure_boot"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := Hygiene(tt.p, tt.su)
			if !eqPtr(h.SecureBoot, tt.secureBoot) || !eqPtr(h.RootedSuspected, tt.rooted) || !slices.Equal(h.RootedEvidence, tt.evidence) {
				t.Errorf("got secure_boot=%v rooted=%v evidence=%q", show(h.SecureBoot), show(h.RootedSuspected), h.RootedEvidence)
			}
			want := append([]string{"firewall_on", "antimalware_on"}, tt.unknown...)
			if got := slices.Sorted(maps.Keys(h.Unknown)); !slices.Equal(got, slices.Sorted(slices.Values(want))) {
				t.Errorf("unknown = %v, want %v", h.Unknown, want)
			}
			if h.Source != GetpropSource {
				t.Errorf("source %q", h.Source)
			}
			checkReport(t, protocol.Posture{Hygiene: h})
		})
	}
}

func TestHygieneEvidenceLimit(t *testing.T) {
	var su []string
	for i := range 100 {
		su = append(su, "su at /x"+strings.Repeat("y", i)+"/su")
	}
	h := Hygiene(props("ro.debuggable", "1"), su)
	if len(h.RootedEvidence) != maxEvidence {
		t.Errorf("%d items", len(h.RootedEvidence))
	}
	checkReport(t, protocol.Posture{Hygiene: h})
}

type fakeFile struct {
	fs.FileInfo
	dir bool
}

func (f fakeFile) IsDir() bool { return f.dir }

func TestSuEvidence(t *testing.T) {
	files := map[string]bool{"/system/xbin/su": false, "/opt/bin/su": false, "/sbin/su": true}
	var stats []string
	stat := func(name string) (fs.FileInfo, error) {
		stats = append(stats, name)
		if name == "/su/bin/su" {
			return nil, fs.ErrPermission
		}
		if dir, ok := files[name]; ok {
			return fakeFile{dir: dir}, nil
		}
		return nil, fs.ErrNotExist
	}
	got := SuEvidence("/opt/bin:relative:/system/xbin::/system/xbin/:/product/bin", stat)
	want := []string{"su at /opt/bin/su", "su at /system/xbin/su"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if slices.Contains(stats, "relative/su") || slices.Contains(stats, "su") {
		t.Errorf("relative PATH entry searched: %q", stats)
	}
	if len(slices.Compact(slices.Sorted(slices.Values(stats)))) != len(stats) {
		t.Errorf("a file was looked at twice: %q", stats)
	}
	if !slices.Contains(stats, "/product/bin/su") || !slices.Contains(stats, "/data/local/xbin/su") {
		t.Errorf("PATH or well-known directory not searched: %q", stats)
	}
	if got := SuEvidence("", func(string) (fs.FileInfo, error) { return nil, fs.ErrNotExist }); got != nil {
		t.Errorf("nothing there: %q", got)
	}
	// The real file system of the build host must not make it panic.
	SuEvidence(os.Getenv("PATH"), os.Stat)
}

func TestOSIdentity(t *testing.T) {
	p := PropsFromGetprop([]byte(sampleDump), nil)
	id := OSIdentity(p)
	if id.Name != "Android" || id.Version != "14" || id.Build != "google/husky/husky:14/AP1A.240505.005/11677807:user/release-keys" ||
		id.Source != GetpropSource || id.Error != "" {
		t.Errorf("got %+v", id)
	}
	if m := Model(p); m != "Pixel 8 Pro" {
		t.Errorf("model %q", m)
	}
	id = OSIdentity(Props{Err: errors.New("exit status 1")})
	if id.Version != "" || !strings.Contains(id.Error, "exit status 1") {
		t.Errorf("got %+v", id)
	}
	if id := OSIdentity(props("ro.build.fingerprint", "x")); !strings.Contains(id.Error, "ro.build.version.release") {
		t.Errorf("got %+v", id)
	}
	if Model(props()) != "" {
		t.Error("model without property")
	}
}

func TestPropsFromGetprop(t *testing.T) {
	if p := PropsFromGetprop([]byte("[a]: [b]\n"), nil); p.Err != nil || p.Values["a"] != "b" {
		t.Errorf("got %+v", p)
	}
	if p := PropsFromGetprop(nil, nil); !errors.Is(p.Err, ErrNoProperties) {
		t.Errorf("empty dump: %+v", p)
	}
	boom := errors.New("boom")
	if p := PropsFromGetprop([]byte("[a]: [b]\n"), boom); !errors.Is(p.Err, boom) || p.Values != nil {
		t.Errorf("failed getprop: %+v", p)
	}
	// A failed getprop must not be read as every property being unset.
	if d := Disk(PropsFromGetprop(nil, nil)); !strings.Contains(d.Unknown["state"], "listed no properties") {
		t.Errorf("got %v", d.Unknown)
	}
}

func anyContains(m map[string]string, s string) bool {
	for _, v := range m {
		if strings.Contains(v, s) {
			return true
		}
	}
	return false
}

func eqPtr[T comparable](a, b *T) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

func show[T any](p *T) any {
	if p == nil {
		return "nil"
	}
	return *p
}
