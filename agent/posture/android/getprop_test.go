package android

import (
	"maps"
	"slices"
	"strings"
	"testing"
)

const sampleDump = `[dalvik.vm.heapsize]: [512m]
[ro.boot.verifiedbootstate]: [green]
[ro.build.fingerprint]: [google/husky/husky:14/AP1A.240505.005/11677807:user/release-keys]
[ro.build.version.release]: [14]
[ro.build.version.security_patch]: [2025-10-05]
[ro.crypto.state]: [encrypted]
[ro.crypto.type]: [file]
[ro.product.model]: [Pixel 8 Pro]
[persist.sys.odd]: [a]: [b] c]
[ro.empty]: []
[ro.multi.line]: [first line
[ro.crypto.state]: [unencrypted]
last line]
[ro.after.multi]: [ok]
not a property line
[]: [no name]
[bad name]: [x]
[ro.no.close]: [never closed
[ro.tail]: [value]`

func TestParseGetprop(t *testing.T) {
	got := ParseGetprop(strings.ReplaceAll(sampleDump, "\n", "\r\n"))
	want := map[string]string{
		"dalvik.vm.heapsize":              "512m",
		"ro.boot.verifiedbootstate":       "green",
		"ro.build.fingerprint":            "google/husky/husky:14/AP1A.240505.005/11677807:user/release-keys",
		"ro.build.version.release":        "14",
		"ro.build.version.security_patch": "2025-10-05",
		"ro.crypto.state":                 "encrypted",
		"ro.crypto.type":                  "file",
		"ro.product.model":                "Pixel 8 Pro",
		"persist.sys.odd":                 "a]: [b] c",
		"ro.empty":                        "",
		"ro.after.multi":                  "ok",
	}
	if !maps.Equal(got, want) {
		t.Errorf("ParseGetprop:\n got %v\nwant %v", got, want)
	}
}

// A line imitating a property inside a multi-line value must not win over
// the real one, whichever way the parser resynchronizes.
func TestParseGetpropConflict(t *testing.T) {
	out := "[ro.crypto.state]: [unencrypted]\n[x]: [a]\n[ro.crypto.state]: [encrypted]\n[ro.crypto.state]: [unencrypted]\n[y]: [b]\n[y]: [b]"
	got := ParseGetprop(out)
	if _, ok := got["ro.crypto.state"]; ok {
		t.Errorf("conflicting ro.crypto.state kept: %q", got["ro.crypto.state"])
	}
	if got["x"] != "a" || got["y"] != "b" {
		t.Errorf("got %v", got)
	}
}

func TestParseGetpropEmpty(t *testing.T) {
	for _, in := range []string{"", "\n", "getprop: permission denied"} {
		if got := ParseGetprop(in); len(got) != 0 {
			t.Errorf("ParseGetprop(%q) = %v", in, got)
		}
	}
}

func FuzzParseGetprop(f *testing.F) {
	f.Add(sampleDump)
	f.Add("[a]: [b]\n[a]: [c]\n")
	f.Add("[a]: [\n]\n[b]: []]]\n")
	f.Add("[a.b]: [x\r\n")
	f.Fuzz(func(t *testing.T, in string) {
		props := ParseGetprop(in)
		for k, v := range props {
			if !validPropName(k) {
				t.Fatalf("invalid name %q", k)
			}
			if strings.Contains(v, "\n") {
				t.Fatalf("value of %q spans lines: %q", k, v)
			}
		}
		// What the parser accepts, printed the way getprop prints it,
		// must parse back to the same properties.
		var b strings.Builder
		for _, k := range slices.Sorted(maps.Keys(props)) {
			b.WriteString("[" + k + "]: [" + props[k] + "]\n")
		}
		if again := ParseGetprop(b.String()); !maps.Equal(again, props) {
			t.Fatalf("round trip:\n got %v\nwant %v", again, props)
		}
	})
}
