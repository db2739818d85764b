package profiles

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestBaselineParses(t *testing.T) {
	p, doc := Baseline()
	if p.Name != BaselineName || len(doc) == 0 {
		t.Fatalf("baseline %+v", p)
	}
	c := p.Controls
	if c.SessionLock.MaxTimeout.D() != 30*time.Minute || c.Patches.Window("critical") != 15*24*time.Hour ||
		c.Bluetooth.Mode != BluetoothAllowList || c.Passcode.MaxFailedAttempts != 10 || !c.DiskEncryption.Required {
		t.Fatalf("baseline controls %+v", c)
	}
}

func TestInvalidProfilesNameFieldAndLine(t *testing.T) {
	for name, c := range map[string]struct {
		doc   string
		field string
		line  int
	}{
		"lock too long":   {"name: p\ncontrols:\n  session_lock:\n    required: true\n    max_timeout: 45m\n", "controls.session_lock.max_timeout", 5},
		"unknown control": {"name: p\ncontrols:\n  disk_encryptoin:\n    required: true\n", "disk_encryptoin", 3},
		"bad duration":    {"name: p\ncontrols:\n  firewall:\n    required: true\n    grace: soon\n", "controls.firewall.grace", 5},
		"bad mode":        {"name: p\ncontrols:\n  bluetooth: {mode: open, enforcement: enforce}\n", "controls.bluetooth.mode", 3},
		"json": {"{\n  \"name\": \"p\",\n  \"controls\": {\n    \"passcode\": {\"min_length\": 4, \"max_failed_attempts\": 10, \"max_inactivity\": \"5m\"}\n  }\n}\n",
			"controls.passcode.min_length", 4},
		"bad name":     {"name: Bad Name\n", "name", 1},
		"bad version":  {"name: p\ncontrols:\n  patches:\n    high_within: 30d\n    min_os_version:\n      Windows: ten\n", "controls.patches.min_os_version.Windows", 6},
		"old window":   {"name: p\ncontrols:\n  patches:\n    security_updates_within: 30d\n", "controls.patches.security_updates_within", 4},
		"long window":  {"name: p\ncontrols:\n  patches:\n    medium_within: 61d\n", "controls.patches.medium_within", 4},
		"bad platform": {"name: p\ncontrols:\n  not_rooted:\n    required: true\n    platforms: [android, linux-desktop]\n", "controls.not_rooted.platforms", 5},
		"no platform":  {"name: p\ncontrols:\n  not_rooted:\n    required: true\n    platforms: []\n", "controls.not_rooted.platforms", 5},
		"wrong type":   {"name: p\ncontrols:\n  firewall:\n    required: maybe\n", "controls.firewall.required", 4},
	} {
		_, err := Parse([]byte(c.doc))
		var pe *Error
		if !errors.As(err, &pe) {
			t.Errorf("%s: %v, want a profiles.Error", name, err)
			continue
		}
		if pe.Field != c.field || pe.Line != c.line {
			t.Errorf("%s: %q (field %q line %d), want field %q line %d", name, err, pe.Field, pe.Line, c.field, c.line)
		}
	}
	if _, err := Parse([]byte("name: [unclosed\n")); err == nil || !strings.Contains(err.Error(), "line") {
		t.Errorf("syntax error: %v", err)
	}
}

func TestVersionAtLeast(t *testing.T) {
	for _, c := range []struct {
		have, want string
		ok         bool
	}{{"12", "12", true}, {"12.4", "12", true}, {"11", "12", false}, {"10.0.19045", "10.0.19044", true},
		{"10.0.9999", "10.0.19044", false}, {"14.2.1 (23C71)", "14.0", true}, {"unknown", "1", false}} {
		if got := VersionAtLeast(c.have, c.want); got != c.ok {
			t.Errorf("%q >= %q: %v", c.have, c.want, got)
		}
	}
}

func FuzzParse(f *testing.F) {
	_, doc := Baseline()
	f.Add(doc)
	f.Add([]byte(`{"name":"x","controls":{"session_lock":{"required":true,"max_timeout":"10m"}}}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		p, err := Parse(doc)
		if err == nil && p == nil {
			t.Fatal("nil profile without error")
		}
	})
}

// FuzzCheckText: the text rules of a profile document never panic,
// whatever the bytes.
func FuzzCheckText(f *testing.F) {
	_, doc := Baseline()
	f.Add(doc)
	f.Add([]byte(`{"name":"a","description":"a\u0000b"}`))
	f.Add([]byte("name: a\n---\nname: b\n"))
	f.Add([]byte(`{"name":"a"} garbage`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		CheckText(doc)
	})
}

func TestBaselineAppliesRootDetectionToMobileOnly(t *testing.T) {
	p, _ := Baseline()
	for platform, want := range map[string]bool{"android/arm64": true, "ios/arm64": true,
		"linux/amd64": false, "windows/amd64": false, "darwin/arm64": false} {
		if got := p.Controls.NotRooted.AppliesTo(platform); got != want {
			t.Errorf("not_rooted applies to %s: %v, want %v", platform, got, want)
		}
	}
	day := 24 * time.Hour
	for platform, want := range map[string]time.Duration{"windows/amd64": 7 * day, "linux/amd64": 7 * day, "darwin/arm64": 60 * day, "darwin": 60 * day} {
		if got := p.Controls.Antimalware.SignatureAge(platform); got != want {
			t.Errorf("signature age on %s: %v, want %v", platform, got, want)
		}
	}
}

func TestSignatureAgeByPlatform(t *testing.T) {
	day := 24 * time.Hour
	p, err := Parse([]byte("name: p\ncontrols:\n  antimalware:\n    required: true\n    max_signature_age_by_platform:\n      darwin: 45d\n      ipados: 10d\n"))
	if err != nil {
		t.Fatal(err)
	}
	a := p.Controls.Antimalware
	for platform, want := range map[string]time.Duration{"darwin/amd64": 45 * day, "ios/arm64": 10 * day,
		"windows/amd64": 7 * day, "linux/arm64": 7 * day, "": 7 * day} {
		if got := a.SignatureAge(platform); got != want {
			t.Errorf("%q: %v, want %v", platform, got, want)
		}
	}
	// max_signature_age is the default of the platforms not named.
	p, err = Parse([]byte(`{"name": "p", "controls": {"antimalware": {"required": true, "max_signature_age": "3d", "max_signature_age_by_platform": {"darwin": "30d", "ios": "20d", "ipados": "10d"}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	a = p.Controls.Antimalware
	for platform, want := range map[string]time.Duration{"darwin/arm64": 30 * day, "ios/arm64": 20 * day, "windows/amd64": 3 * day} {
		if got := a.SignatureAge(platform); got != want {
			t.Errorf("%q: %v, want %v", platform, got, want)
		}
	}
	var zero Antimalware
	if got := zero.SignatureAge("darwin/arm64"); got != DefaultMaxSignatureAge.D() {
		t.Errorf("zero control: %v", got)
	}
}

func TestSignatureAgeByPlatformRefused(t *testing.T) {
	const head = "name: p\ncontrols:\n  antimalware:\n    required: true\n    max_signature_age_by_platform:\n"
	for name, c := range map[string]struct {
		doc, field, msg string
		line            int
	}{
		"bad platform":   {head + "      osx: 45d\n", "controls.antimalware.max_signature_age_by_platform.osx", `"osx" is not a platform`, 6},
		"zero":           {head + "      darwin: 0s\n", "controls.antimalware.max_signature_age_by_platform.darwin", "must be more than 0", 6},
		"zero days":      {head + "      windows: 7d\n      darwin: 0d\n", "controls.antimalware.max_signature_age_by_platform.darwin", "must be more than 0", 7},
		"negative":       {head + "      darwin: -1h\n", "controls.antimalware.max_signature_age_by_platform.darwin", "", 6},
		"empty":          {head + "      {}\n", "controls.antimalware.max_signature_age_by_platform", "at least one platform", 5},
		"not a duration": {head + "      darwin: often\n", "controls.antimalware.max_signature_age_by_platform.darwin", "", 6},
	} {
		_, err := Parse([]byte(c.doc))
		var pe *Error
		if !errors.As(err, &pe) {
			t.Errorf("%s: %v, want a profiles.Error", name, err)
			continue
		}
		if pe.Field != c.field || pe.Line != c.line || !strings.Contains(pe.Msg, c.msg) {
			t.Errorf("%s: %q (field %q line %d), want field %q line %d saying %q", name, err, pe.Field, pe.Line, c.field, c.line, c.msg)
		}
	}
}

// TestOldPatchWindow: a new document with the replaced field is refused
// with the names of the new ones; a stored one still loads, each window
// capped at the old value.
func TestOldPatchWindow(t *testing.T) {
	doc := []byte("name: p\ncontrols:\n  patches:\n    security_updates_within: 20d\n")
	_, err := Parse(doc)
	if err == nil || !strings.Contains(err.Error(), "critical_within, high_within, medium_within, low_within") {
		t.Fatalf("Parse: %v", err)
	}
	p, err := ParseStored(doc)
	if err != nil {
		t.Fatal(err)
	}
	day := 24 * time.Hour
	pt := p.Controls.Patches
	for sev, want := range map[string]time.Duration{"critical": 15 * day, "high": 20 * day, "medium": 20 * day, "low": 20 * day, "unknown": 15 * day} {
		if got := pt.Window(sev); got != want {
			t.Errorf("%s window %v, want %v", sev, got, want)
		}
	}
}
