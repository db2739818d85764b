package spool

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func TestSpoolOrderBoundAndReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, 3)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 4; i++ {
		if err := s.Put(fmt.Sprintf("r%d", i), []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	if s.Len() != 3 || s.Dropped() != 1 {
		t.Fatalf("len %d dropped %d, want 3 and 1", s.Len(), s.Dropped())
	}
	if err := s.Remove("r3"); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, ".tmp-garbage"), []byte("x"), 0o600)

	// A restarted agent finds what was not acknowledged, in order, and
	// appends after it.
	s2, err := Open(dir, 3)
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Put("r5", []byte("5")); err != nil {
		t.Fatal(err)
	}
	items, err := s2.Pending()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, it := range items {
		got = append(got, it.ID+"="+string(it.Frame))
	}
	if fmt.Sprint(got) != "[r2=2 r4=4 r5=5]" {
		t.Fatalf("pending = %v", got)
	}
	if err := s2.Put("../evil", nil); err == nil {
		t.Fatal("path-like id accepted")
	}
}

func TestAddRefusesWhenFull(t *testing.T) {
	s, err := Open(t.TempDir(), 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b"} {
		if err := s.Add(id, []byte(id)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Add("c", []byte("c")); !errors.Is(err, ErrFull) {
		t.Fatalf("third frame in a spool of two: %v", err)
	}
	if err := s.Add("a", []byte("a")); err != nil {
		t.Fatalf("a duplicate is not a new frame: %v", err)
	}
	if !s.Has("a") || !s.Has("b") || s.Has("c") || s.Dropped() != 0 {
		t.Fatal("Add dropped or stored the wrong frames")
	}
}
