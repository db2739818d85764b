package input

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
)

type body struct {
	Name string `json:"name"`
	N    int    `json:"n"`
}

func (b *body) Check() error { return Name("name", b.Name) }

func TestDecodeJSON(t *testing.T) {
	cases := []struct {
		in string
		ok bool
	}{
		{`{"name":"a","n":1}`, true},
		{" {\"name\":\"a\"}\n", true},
		{`{"name":"a"} garbage`, false},
		{`{"name":"a"}}`, false},
		{`{"name":"a"}{"name":"b"}`, false},
		{`{"name":"a"} {"name":"b"}`, false},
		{`{"name":"a"}]`, false},
		{`{"name":"a","x":1}`, false},
		{`{"name":"../../etc/passwd"}`, false},
		{"{\"name\":\"a\xff\"}", false},
		{`{"name":"a\ud800"}`, false},
		{`{"name":"a\udc00"}`, false},
		{`{"name":"a\ud83d\ude00"}`, false}, // valid escape, but not a valid name
		{`{"name":"a\\ud800"}`, false},      // escaped backslash: fine to the scanner, the name refuses it
		{``, false},
		{`   `, false},
		{`null`, false},
	}
	for _, c := range cases {
		var b body
		err := DecodeJSON(strings.NewReader(c.in), &b, 1<<10)
		if (err == nil) != c.ok {
			t.Errorf("DecodeJSON(%q) = %v, want ok=%v", c.in, err, c.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("DecodeJSON(%q) = %v, not ErrInvalid", c.in, err)
		}
	}
	if err := DecodeJSON(strings.NewReader(`{"name":"`+strings.Repeat("a", 2000)+`"}`), &body{}, 1<<10); err == nil ||
		!strings.Contains(err.Error(), "larger than") {
		t.Errorf("oversized body: %v", err)
	}
	var m map[string]string
	if err := DecodeJSON(strings.NewReader(`{"a":"\ud83d\ude00"}`), &m, 1<<10); err != nil || m["a"] != "😀" {
		t.Errorf("surrogate pair: %v %q", err, m["a"])
	}
}

func TestText(t *testing.T) {
	for _, c := range []struct {
		v          string
		text, free bool
	}{
		{"plain", true, true},
		{"", true, true},
		{"Zug – 7", true, true},
		{"a\x00b", false, false},
		{"a\nb", false, true},
		{"a\tb", false, true},
		{"a\r\nb", false, true},
		{"a\rb", false, false},
		{"a\x7fb", false, false},
		{"a\u0085b", false, false},
		{"a\xffb", false, false},
		{strings.Repeat("a", 11), false, false},
	} {
		if err := Text("f", c.v, 10); (err == nil) != c.text {
			t.Errorf("Text(%q) = %v", c.v, err)
		}
		if err := FreeText("f", c.v, 10); (err == nil) != c.free {
			t.Errorf("FreeText(%q) = %v", c.v, err)
		}
	}
	if err := Text("owner", "a\x00", 10); err == nil || !strings.HasPrefix(err.Error(), "owner: ") {
		t.Errorf("error does not name the field: %v", err)
	}
}

func TestName(t *testing.T) {
	for _, v := range []string{"a", "cjis-baseline", "patrol.cars_2", "0", strings.Repeat("a", 63)} {
		if err := Name("name", v); err != nil {
			t.Errorf("Name(%q) = %v", v, err)
		}
	}
	for _, v := range []string{"", " ", "../../etc/passwd", "a/b", "A", "-a", ".a", "a\n", "a b", strings.Repeat("a", 64), strings.Repeat("a", 4096), "é"} {
		if err := Name("name", v); err == nil || !errors.Is(err, ErrInvalid) {
			t.Errorf("Name(%q) = %v", v, err)
		}
	}
}

func TestRange(t *testing.T) {
	lat, bad := 45.0, 91.0
	if Latitude("latitude", &lat) != nil || Latitude("latitude", nil) != nil {
		t.Error("valid latitude refused")
	}
	err := Latitude("latitude", &bad)
	if err == nil || !strings.Contains(err.Error(), "between -90 and 90") {
		t.Errorf("latitude 91: %v", err)
	}
	lon := 181.0
	if Longitude("longitude", &lon) == nil {
		t.Error("longitude 181 accepted")
	}
	if err := Range("uses", 0, 1, 10000); err == nil || !strings.Contains(err.Error(), "between 1 and 10000") {
		t.Errorf("uses 0: %v", err)
	}
}

func TestInvalid(t *testing.T) {
	if Invalid(nil) != nil {
		t.Fatal("Invalid(nil) != nil")
	}
	base := errors.New("base")
	if err := Invalid(base); !errors.Is(err, ErrInvalid) || !errors.Is(err, base) {
		t.Errorf("Invalid keeps neither: %v", err)
	}
}

// TestImportsOnlyStandardLibrary keeps input a leaf: protocol, and so the
// agent, links it.
func TestImportsOnlyStandardLibrary(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if !strings.HasSuffix(p, "/internal/input") {
			t.Errorf("input depends on non-standard package %s", p)
		}
	}
}

// FuzzDecodeJSON: nothing panics, and whatever is accepted is valid UTF-8
// text without control characters where the Check says so.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{`{"name":"a","n":1}`, `{"name":"a"} {}`, `{"name":"a\ud800"}`, "{\"name\":\"\xff\"}", `{"n":1e400}`, `[`, `{"name":"a\\"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var b body
		if err := Unmarshal(data, &b); err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error outside ErrInvalid: %v", err)
			}
			return
		}
		if Name("name", b.Name) != nil {
			t.Fatalf("accepted a bad name %q", b.Name)
		}
		var m map[string]any
		if err := Unmarshal(data, &m); err != nil {
			t.Fatalf("accepted as a struct, refused as a map: %v", err)
		}
	})
}

func FuzzText(f *testing.F) {
	for _, s := range []string{"a", "a\x00", "a\r\n", "\xff", "\u0085"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if FreeText("f", s, 1<<10) == nil {
			for i, r := range s {
				if r < 0x20 && r != '\n' && r != '\t' && !(r == '\r' && i+1 < len(s) && s[i+1] == '\n') || r == 0x7f {
					t.Fatalf("FreeText accepted %q", s)
				}
			}
		}
		if Text("f", s, 1<<10) == nil && strings.ContainsAny(s, "\x00\n\t\r") {
			t.Fatalf("Text accepted %q", s)
		}
	})
}

func TestPrintable(t *testing.T) {
	for in, want := range map[string]string{"ok": "ok", "a\x00b\xff": "a?b?", "line\r\nnext\tx": "line\nnext\tx", "\x1b[31mred": "?[31mred"} {
		if got := Printable(in); got != want || FreeText("f", got, 100) != nil {
			t.Errorf("Printable(%q) = %q, want %q", in, got, want)
		}
	}
}
