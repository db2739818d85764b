package selfupdate

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func want(b []byte) Want {
	s := sha256.Sum256(b)
	return Want{OS: runtime.GOOS, Arch: runtime.GOARCH, Size: int64(len(b)), SHA256: hex.EncodeToString(s[:])}
}

func TestStageReplacesOnlyAVerifiedBuildAndRestoreUndoesIt(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "cordon-agent")
	old, next := []byte("old build"), []byte("new build!")
	os.WriteFile(exe, old, 0o755)
	for name, c := range map[string]struct {
		body []byte
		w    Want
		err  error
	}{
		"altered":    {[]byte("new build?"), want(next), ErrHash},
		"short":      {next[:4], want(next), ErrSize},
		"long":       {append(next, 'x'), want(next), ErrSize},
		"other arch": {next, Want{OS: runtime.GOOS, Arch: "no-such-arch", Size: 10, SHA256: want(next).SHA256}, ErrPlatform},
	} {
		if err := Stage(exe, bytes.NewReader(c.body), c.w); !errors.Is(err, c.err) {
			t.Errorf("%s: %v, want %v", name, err, c.err)
		}
		if b, _ := os.ReadFile(exe); !bytes.Equal(b, old) {
			t.Fatalf("%s: the executable changed", name)
		}
	}
	if err := Stage(exe, bytes.NewReader(next), want(next)); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(exe); !bytes.Equal(b, next) {
		t.Fatal("not replaced")
	}
	if b, _ := os.ReadFile(exe + PrevSuffix); !bytes.Equal(b, old) {
		t.Fatal("no .prev")
	}
	if fi, _ := os.Stat(exe); fi.Mode().Perm()&0o100 == 0 {
		t.Fatalf("new build not executable: %v", fi.Mode())
	}
	if err := Restore(exe); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(exe); !bytes.Equal(b, old) {
		t.Fatal("not restored")
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".*"))
	if len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

func TestMarkerTransitionsAreExclusive(t *testing.T) {
	dir := t.TempDir()
	if err := WriteMarker(dir, &Marker{CommandID: "c1", To: "1.1.0", State: Pending}); err != nil {
		t.Fatal(err)
	}
	won := 0
	for range 2 {
		Update(t.Context(), dir, func(m *Marker) bool {
			if m.State != Pending {
				return false
			}
			m.State = Connected
			won++
			return true
		})
	}
	if m, _ := ReadMarker(dir); won != 1 || m.State != Connected {
		t.Fatalf("won %d, marker %+v", won, m)
	}
	if err := RemoveMarker(dir); err != nil {
		t.Fatal(err)
	}
	if m, err := ReadMarker(dir); m != nil || err != nil {
		t.Fatalf("after remove: %+v %v", m, err)
	}
}
