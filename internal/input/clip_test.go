package input

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestClipKeepsRunesWhole(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want string
	}{
		{"short", 10, "short"},
		{"exactly", 7, "exactly"},
		{"abcdef", 3, "abc"},
		{"ab€", 3, "ab"}, // € is 3 bytes: cutting at 3 would split it
		{"ab€", 4, "ab"},
		{"ab€", 5, "ab€"},
		{"€€", 1, ""},
		{"x", 0, ""},
		{"x", -1, ""},
	} {
		if got := Clip(tc.in, tc.max); got != tc.want {
			t.Errorf("Clip(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}

func FuzzClip(f *testing.F) {
	f.Add(strings.Repeat("é", 10), 7)
	f.Add("plain", 2)
	f.Fuzz(func(t *testing.T, s string, max int) {
		got := Clip(s, max)
		if len(got) > max && max >= 0 {
			t.Fatalf("Clip(%q, %d) = %q: longer than max", s, max, got)
		}
		if !strings.HasPrefix(s, got) {
			t.Fatalf("Clip(%q, %d) = %q: not a prefix", s, max, got)
		}
		if utf8.ValidString(s) && !utf8.ValidString(got) {
			t.Fatalf("Clip(%q, %d) = %q: split a rune", s, max, got)
		}
	})
}
