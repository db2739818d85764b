package secret

import (
	"errors"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	s := New("cdt")
	id, h, err := Parse("cdt", s.Text)
	if err != nil {
		t.Fatal(err)
	}
	if id != s.ID || !Equal(h, s.Hash) {
		t.Fatalf("parse gave %q %x, want %q %x", id, h, s.ID, s.Hash)
	}
	if New("cdt").Text == s.Text {
		t.Fatal("two secrets are equal")
	}
	// Change the last character to a different one (a fixed "a" would
	// leave one secret in 32 unaltered).
	last := "a"
	if s.Text[len(s.Text)-1] == 'a' {
		last = "b"
	}
	_, h2, _ := Parse("cdt", s.Text[:len(s.Text)-1]+last)
	if h2 != nil && Equal(h2, s.Hash) {
		t.Fatal("altered secret matched")
	}
}

func FuzzParse(f *testing.F) {
	f.Add("cdt", New("cdt").Text)
	f.Add("cdk", "cdk__")
	f.Fuzz(func(t *testing.T, prefix, text string) {
		id, h, err := Parse(prefix, text)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("unexpected error type %v", err)
			}
			return
		}
		if len(id) != 16 || len(h) != 32 {
			t.Fatalf("accepted %q: id %q", text, id)
		}
	})
}
