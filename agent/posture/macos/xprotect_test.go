package macos

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/protocol"
)

// Fixtures and where their formats come from (none was recorded on a Mac
// here; each follows a public record of the real output):
//   - xprotect_version.json: `xprotect version --json` on macOS 15+, with
//     the keys xprotect_bundle_version and xprotect_bundle_install_date
//     (ISO 8601, UTC) that a public macOS posture tool decodes and keeps
//     in its own fixture (SecurityParsers.xprotect, xprotect-version.json).
//   - xprotect_version.txt: `xprotect version` without --json, "Version:"
//     and "Installed:" lines as a public collector script parses them
//     (system-health-guardian.sh); the time layout after the date is
//     NSDate's description and is the least certain part.
//   - XProtect_Info.plist: XProtect.bundle/Contents/Info.plist, whose
//     CFBundleShortVersionString EAs and osquery-like tools read
//     (`defaults read .../XProtect.bundle/Contents/Info.plist
//     CFBundleShortVersionString`); only the keys a bundle's Info.plist has.
//   - InstallHistory_xprotect.plist: /Library/Receipts/InstallHistory.plist
//     as on macOS 14, in the layout of the existing InstallHistory.plist
//     fixture: displayName "XProtectPlistConfigData" (the name
//     `system_profiler SPInstallHistoryDataType` shows, which Sal's
//     plugin greps for) with the version in displayVersion, and
//     "XProtectPayloads" for XProtect Remediator.

var (
	xpInstalled = time.Date(2025, 12, 17, 9, 41, 7, 0, time.UTC)
	xpNow       = time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC)
)

func TestParseXProtectVersion(t *testing.T) {
	for _, f := range []string{"xprotect_version.json", "xprotect_version.txt"} {
		v, at, err := ParseXProtectVersion(fixture(t, f))
		if err != nil || v != "5325" || !at.Equal(xpInstalled) {
			t.Errorf("%s: got %q %v %v", f, v, at, err)
		}
	}
	good := map[string]string{
		"number version":       `{"xprotect_bundle_version":5325,"xprotect_bundle_install_date":"2025-12-17T09:41:07Z"}`,
		"fractional seconds":   `{"xprotect_bundle_version":"5325","xprotect_bundle_install_date":"2025-12-17T09:41:07.5Z"}`,
		"offset":               `{"xprotect_bundle_version":"5325","xprotect_bundle_install_date":"2025-12-17T10:41:07+01:00"}`,
		"more keys":            `{"xprotect_bundle_version":"5325","xprotect_bundle_install_date":"2025-12-17T09:41:07Z","other":1}`,
		"bare date":            "Version: 5325\nInstalled: 2025-12-17\n",
		"ISO text":             "XProtect Version: 5325\nInstalled: 2025-12-17T09:41:07Z\n",
		"installed date label": "Version: 5325\nInstalled Date: 2025-12-17 09:41:07 +0000\n",
	}
	for name, in := range good {
		if v, at, err := ParseXProtectVersion([]byte(in)); err != nil || v != "5325" || at.IsZero() || at.Location() != time.UTC {
			t.Errorf("%s: got %q %v %v", name, v, at, err)
		}
	}
	bad := map[string]string{
		"empty":            "",
		"no date":          `{"xprotect_bundle_version":"5325"}`,
		"no version":       `{"xprotect_bundle_install_date":"2025-12-17T09:41:07Z"}`,
		"version 0 text":   "Version: 0\n",
		"date not ISO":     `{"xprotect_bundle_version":"5325","xprotect_bundle_install_date":"17/12/2025"}`,
		"date a number":    `{"xprotect_bundle_version":"5325","xprotect_bundle_install_date":1734428467}`,
		"two documents":    `{"xprotect_bundle_version":"5325","xprotect_bundle_install_date":"2025-12-17T09:41:07Z"}{}`,
		"truncated":        `{"xprotect_bundle_version":"5325","xprotect_bundle_install_date":"2025-12-`,
		"version a word":   `{"xprotect_bundle_version":"latest","xprotect_bundle_install_date":"2025-12-17T09:41:07Z"}`,
		"usage message":    "usage: xprotect <command>\n",
		"text without day": "Version: 5325\nInstalled: yesterday\n",
	}
	for name, in := range bad {
		if v, at, err := ParseXProtectVersion([]byte(in)); err == nil {
			t.Errorf("%s: accepted as %q %v", name, v, at)
		}
	}
}

func TestParseXProtectHistory(t *testing.T) {
	b := fixture(t, "InstallHistory_xprotect.plist")
	tests := []struct {
		version string
		want    time.Time
		wantErr bool
	}{
		// The newest Apple install of the bundle's version; the "Installer"
		// entry (anyone's package) and XProtectPayloads are not read.
		{"2192", time.Date(2024, 4, 16, 19, 2, 48, 0, time.UTC), false},
		{"2188", time.Date(2024, 3, 12, 20, 14, 33, 0, time.UTC), false},
		{"", time.Date(2024, 4, 16, 19, 2, 48, 0, time.UTC), false},
		{"2200", time.Time{}, true},
	}
	for _, tt := range tests {
		got, err := ParseXProtectHistory(b, tt.version)
		if (err != nil) != tt.wantErr || !got.Equal(tt.want) {
			t.Errorf("version %q: got %v, %v", tt.version, got, err)
		}
	}
	// The patch section's fixture: one XProtect install.
	if got, err := ParseXProtectHistory(fixture(t, "InstallHistory.plist"), "2177"); err != nil || !got.Equal(time.Date(2023, 11, 20, 3, 2, 41, 0, time.UTC)) {
		t.Errorf("InstallHistory.plist: got %v, %v", got, err)
	}
	if _, err := ParseXProtectHistory([]byte(plistHead+"<dict/></plist>"), ""); err == nil {
		t.Error("a dictionary accepted as a history")
	}
}

func TestParseBundleVersion(t *testing.T) {
	if v, err := ParseBundleVersion(fixture(t, "XProtect_Info.plist")); err != nil || v != "2192" {
		t.Errorf("got %q, %v", v, err)
	}
	for name, in := range map[string]string{
		"no key": plistHead + "<dict><key>CFBundleName</key><string>XProtect</string></dict></plist>",
		"array":  plistHead + "<array/></plist>",
		"blank":  plistHead + "<dict><key>CFBundleShortVersionString</key><string> </string></dict></plist>",
	} {
		if v, err := ParseBundleVersion([]byte(in)); err == nil {
			t.Errorf("%s: got %q", name, v)
		}
	}
}

func TestXProtectSignatures(t *testing.T) {
	tool := func(f string) Output { return out(CmdXProtectVersion, fixture(t, f)) }
	info := out("XProtect.bundle/Contents/Info.plist", fixture(t, "XProtect_Info.plist"))
	hist := out(InstallHistory, fixture(t, "InstallHistory_xprotect.plist"))
	infoMod := time.Date(2024, 4, 10, 22, 0, 0, 0, time.UTC)
	notFound := Output{Command: InstallHistory, Err: &fs.PathError{Op: "open", Path: InstallHistory, Err: fs.ErrNotExist}}
	sonomaHist := time.Date(2024, 4, 16, 19, 2, 48, 0, time.UTC)

	tests := []struct {
		name   string
		d      XProtectData
		want   time.Time // zero: no date
		source string
		why    string // part of the reason when there is no date
	}{
		{"macOS 15: xprotect version --json", XProtectData{Tool: tool("xprotect_version.json"), Info: info, History: hist, Now: xpNow},
			xpInstalled, "xprotect version", ""},
		{"macOS 15: text output", XProtectData{Tool: tool("xprotect_version.txt"), Now: xpNow}, xpInstalled, "xprotect version", ""},
		// On 15+ the old bundle and the history describe a copy that is not
		// in use: no fallback to them.
		{"macOS 15: tool fails", XProtectData{Tool: Output{Command: CmdXProtectVersion, Err: errExit1, Stderr: []byte("xprotect: an error occurred\n")},
			Info: info, InfoModTime: infoMod, History: hist, Now: xpNow}, time.Time{}, "", "an error occurred"},
		{"macOS 15: no --json, plain output", XProtectData{Tool: Output{Command: CmdXProtectVersion, Err: errExit1, Stderr: []byte("Unknown option '--json'\n")},
			ToolText: out(CmdXProtectVersionText, fixture(t, "xprotect_version.txt")), Info: info, History: hist, Now: xpNow},
			xpInstalled, "xprotect version", ""},
		{"macOS 15: both forms fail", XProtectData{Tool: Output{Command: CmdXProtectVersion, Err: errExit1},
			ToolText: out(CmdXProtectVersionText, []byte("usage: xprotect\n")), Info: info, History: hist, Now: xpNow},
			time.Time{}, "", CmdXProtectVersionText + ": neither JSON"},
		// JSON that exits 0 but cannot be read is not retried as text.
		{"macOS 15: unknown output", XProtectData{Tool: out(CmdXProtectVersion, []byte("Version: 0\n")), Info: info, History: hist, Now: xpNow},
			time.Time{}, "", "neither JSON"},
		{"macOS 15: date in the future", XProtectData{Tool: out(CmdXProtectVersion,
			[]byte(`{"xprotect_bundle_version":"5325","xprotect_bundle_install_date":"2027-01-01T00:00:00Z"}`)), Now: xpNow},
			time.Time{}, "", "in the future"},
		{"macOS 15: date before XProtect", XProtectData{Tool: out(CmdXProtectVersion,
			[]byte(`{"xprotect_bundle_version":"5325","xprotect_bundle_install_date":"2001-01-01T00:00:00Z"}`)), Now: xpNow},
			time.Time{}, "", "before XProtect"},
		{"macOS 14: history entry of the bundle's version", XProtectData{Info: info, InfoModTime: infoMod, History: hist, Now: xpNow},
			sonomaHist, InstallHistory + " XProtectPlistConfigData", ""},
		{"macOS 14: bundle unreadable, newest entry", XProtectData{Info: Output{Command: "Info.plist", Err: errors.New("permission denied")}, History: hist, Now: xpNow},
			sonomaHist, InstallHistory + " XProtectPlistConfigData", ""},
		{"macOS 14: no history, bundle time", XProtectData{Info: info, InfoModTime: infoMod, History: notFound, Now: xpNow},
			infoMod, "XProtect.bundle Info.plist modification time", ""},
		{"macOS 14: history without the version, bundle time", XProtectData{Info: info, InfoModTime: infoMod,
			History: out(InstallHistory, fixture(t, "InstallHistory.plist")), Now: xpNow},
			infoMod, "XProtect.bundle Info.plist modification time", ""},
		{"macOS 14: nothing readable", XProtectData{Info: Output{Command: "Info.plist", Err: errors.New("permission denied")}, History: notFound, Now: xpNow},
			time.Time{}, "", "permission denied"},
		{"macOS 14: garbled history, no bundle time", XProtectData{Info: info, History: out(InstallHistory, []byte("garbage")), Now: xpNow},
			time.Time{}, "", InstallHistory},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at, source, why := tt.d.Signatures()
			switch {
			case tt.want.IsZero() && at != nil:
				t.Fatalf("got a date %v from %q, want none", *at, source)
			case tt.want.IsZero():
				if why == "" || !strings.Contains(why, tt.why) {
					t.Errorf("why %q, want it to say %q", why, tt.why)
				}
			case at == nil:
				t.Fatalf("no date (%s)", why)
			case !at.Equal(tt.want) || source != tt.source || why != "":
				t.Errorf("got %v from %q (%q), want %v from %q", *at, source, why, tt.want, tt.source)
			}
		})
	}
}

func TestHygieneSignatureDate(t *testing.T) {
	fwOn := out(CmdFirewall, []byte("Firewall is enabled. (State = 1)\n"))
	sipOn := out(CmdSIP, []byte("System Integrity Protection status: enabled.\n"))
	ok := XProtectData{Tool: out(CmdXProtectVersion, fixture(t, "xprotect_version.json")), Now: xpNow}

	h := Hygiene(fwOn, sipOn, nil, ok)
	if h.AntimalwareSignaturesAt == nil || !h.AntimalwareSignaturesAt.Equal(xpInstalled) || !strings.Contains(h.Source, "xprotect version") {
		t.Errorf("got %v, source %q", h.AntimalwareSignaturesAt, h.Source)
	}
	valid(t, protocol.Posture{Hygiene: h})

	// No date: left out with the reason, never guessed.
	h = Hygiene(fwOn, sipOn, nil, XProtectData{Tool: Output{Command: CmdXProtectVersion, Err: errExit1}, Now: xpNow})
	if h.AntimalwareSignaturesAt != nil || h.Unknown["antimalware_signatures_at"] == "" || !*h.AntimalwareOn {
		t.Errorf("got %v, unknown %v", h.AntimalwareSignaturesAt, h.Unknown)
	}
	valid(t, protocol.Posture{Hygiene: h})

	// No XProtect: no signature date to speak of.
	notExist := &fs.PathError{Op: "stat", Path: XProtectPaths[1], Err: fs.ErrNotExist}
	h = Hygiene(fwOn, sipOn, notExist, ok)
	if h.AntimalwareSignaturesAt != nil || h.Unknown["antimalware_signatures_at"] != "" {
		t.Errorf("without XProtect: got %v, unknown %v", h.AntimalwareSignaturesAt, h.Unknown)
	}
}

func FuzzParseXProtectVersion(f *testing.F) {
	for _, s := range []string{"xprotect_version.json", "xprotect_version.txt"} {
		b, err := readFixture(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"xprotect_bundle_version":5325,"xprotect_bundle_install_date":"2025-12-17T09:41:07.123+01:00"}`))
	f.Add([]byte("Version: 5325\nInstalled: 2025-12-17\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, at, err := ParseXProtectVersion(b)
		if err != nil {
			return
		}
		if !xpVersion.MatchString(v) || at.IsZero() || at.Location() != time.UTC {
			t.Errorf("accepted %q as version %q at %v", b, v, at)
		}
		// Whatever parses must survive the checks that guard the report.
		d := XProtectData{Tool: out(CmdXProtectVersion, b), Now: xpNow}
		if got, _, why := d.Signatures(); got != nil && (got.After(xpNow.Add(maxClockAhead)) || got.Before(xprotectFirst) || why != "") {
			t.Errorf("%q: reported %v (%q)", b, *got, why)
		}
	})
}
