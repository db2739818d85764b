package macos

import (
	"bytes"
	"reflect"
	"testing"
	"time"
)

const plistHead = `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
`

func TestDecodePlist(t *testing.T) {
	tests := []struct {
		name string
		body string
		want any
	}{
		{"dict of scalars", `<dict><key>s</key><string>a &amp; b</string><key>i</key><integer>-3</integer>
			<key>r</key><real>1.5</real><key>t</key><true/><key>f</key><false/><key>e</key><string/></dict>`,
			map[string]any{"s": "a & b", "i": int64(-3), "r": 1.5, "t": true, "f": false, "e": ""}},
		{"uint64 beyond int64", `<integer>18446744073709551615</integer>`, uint64(18446744073709551615)},
		{"date", `<date>2023-12-19T20:45:12Z</date>`, time.Date(2023, 12, 19, 20, 45, 12, 0, time.UTC)},
		{"data with line breaks", "<data>\n\tAAECAw==\n\t</data>", []byte{0, 1, 2, 3}},
		{"nested", `<array><dict><key>a</key><array/></dict><array><integer>1</integer></array></array>`,
			[]any{map[string]any{"a": []any{}}, []any{int64(1)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodePlist([]byte(plistHead + tt.body + "\n</plist>\n"))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestDecodePlistRejects(t *testing.T) {
	for name, in := range map[string]string{
		"empty":             "",
		"not xml":           "IOConsoleUsers = (locked)",
		"no plist element":  `<?xml version="1.0"?><dict></dict>`,
		"empty plist":       plistHead + "</plist>",
		"truncated":         plistHead + "<dict><key>a</key><integer>1",
		"key without value": plistHead + "<dict><key>a</key></dict></plist>",
		"value without key": plistHead + "<dict><string>a</string></dict></plist>",
		"bad integer":       plistHead + "<integer>12ab</integer></plist>",
		"bad date":          plistHead + "<date>yesterday</date></plist>",
		"bad data":          plistHead + "<data>!!!</data></plist>",
		"unknown element":   plistHead + "<set/></plist>",
		"two values":        plistHead + "<true/><false/></plist>",
		"text in true":      plistHead + "<true>yes</true></plist>",
		"element in string": plistHead + "<string><b/></string></plist>",
		"too deep":          plistHead + string(bytes.Repeat([]byte("<array>"), 100)) + string(bytes.Repeat([]byte("</array>"), 100)) + "</plist>",
	} {
		if v, err := DecodePlist([]byte(in)); err == nil {
			t.Errorf("%s: decoded %#v, want an error", name, v)
		}
	}
}

func TestDecodePlistFixtures(t *testing.T) {
	for _, f := range []string{"ioreg_root_unlocked.plist", "ioreg_root_locked.plist", "ioreg_hid.plist", "InstallHistory.plist", "InstallHistory_xprotect.plist", "XProtect_Info.plist"} {
		if _, err := DecodePlist(fixture(t, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func FuzzDecodePlist(f *testing.F) {
	for _, s := range []string{"ioreg_root_unlocked.plist", "ioreg_root_locked.plist", "ioreg_hid.plist", "InstallHistory.plist", "InstallHistory_xprotect.plist", "XProtect_Info.plist"} {
		b, err := readFixture(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(plistHead + "<data>AA==</data></plist>"))
	f.Add([]byte(plistHead + "<integer>0x10</integer></plist>"))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := DecodePlist(b)
		if err != nil {
			return
		}
		// Whatever decodes must be walkable by the parsers without a
		// panic, and they must either fail or give sane values.
		findKey(v, "IOConsoleUsers", 0)
		if d, err := ParseHIDIdleTime(b); err == nil && d < 0 {
			t.Errorf("negative idle time %v", d)
		}
		ParseConsoleSession(b)
		ParseInstallHistory(b)
		if at, err := ParseXProtectHistory(b, ""); err == nil && at.IsZero() {
			t.Error("zero XProtect install date without an error")
		}
		ParseBundleVersion(b)
	})
}
