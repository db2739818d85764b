package releases

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cordon-mdm/cordon/internal/testbed"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/store"
)

func TestAddKeepsAValidBuildOnceAndRefusesTheRest(t *testing.T) {
	dir, st, _ := testbed.StoreAndCA(t)
	s := New(st, audit.New(st, nil), dir)
	add := func(body, ver, goos, arch string) (*store.AgentRelease, error) {
		return s.Add(t.Context(), AddRequest{File: strings.NewReader(body), Version: ver, OS: goos, Arch: arch, Actor: "local:it", Source: "local"})
	}
	rel, err := add("build one", "1.0.0", "linux", "amd64")
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, Dir, rel.SHA256))
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Size() != int64(len("build one")) {
		t.Fatalf("stored file %v %v", fi, err)
	}
	for name, c := range map[string]struct {
		body, ver, goos, arch string
		err                   error
	}{
		"bad version":  {"x", "1.0", "linux", "amd64", ErrInvalid},
		"bad os":       {"x", "1.0.1", "plan9", "amd64", ErrInvalid},
		"bad arch":     {"x", "1.0.1", "linux", "386", ErrInvalid},
		"empty":        {"", "1.0.1", "linux", "amd64", ErrInvalid},
		"same version": {"other", "1.0.0", "linux", "amd64", ErrDuplicate},
		"same file":    {"build one", "1.0.1", "linux", "amd64", ErrDuplicate},
	} {
		if _, err := add(c.body, c.ver, c.goos, c.arch); !errors.Is(err, c.err) {
			t.Errorf("%s: %v, want %v", name, err, c.err)
		}
	}
	rs, _ := s.List(t.Context())
	files, _ := os.ReadDir(filepath.Join(dir, Dir))
	if len(rs) != 1 || len(files) != 1 {
		t.Fatalf("refusals kept something: %d rows, %d files", len(rs), len(files))
	}
	f, got, err := s.Open(t.Context(), rel.SHA256)
	if err != nil || got.Version != "1.0.0" {
		t.Fatalf("open: %v %v", got, err)
	}
	f.Close()
	if _, _, err := s.Open(t.Context(), "../../etc/passwd"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("open of a path: %v", err)
	}
}

func TestPercentChoiceIsStableAndGrows(t *testing.T) {
	at := func(p int) map[string]bool {
		ro := &store.AgentRollout{Percent: p}
		out := map[string]bool{}
		for i := range 1000 {
			id := fmt.Sprintf("device-%d", i)
			if chosen(ro, store.RolloutCandidate{ID: id}) {
				out[id] = true
			}
		}
		return out
	}
	ten, fifty := at(10), at(50)
	if len(ten) < 50 || len(ten) > 150 || len(fifty) < 400 || len(fifty) > 600 || len(at(100)) != 1000 {
		t.Fatalf("shares: 10%%=%d 50%%=%d", len(ten), len(fifty))
	}
	for id := range ten {
		if !fifty[id] {
			t.Fatalf("%s chosen at 10%% but not at 50%%", id)
		}
	}
	ro := &store.AgentRollout{Percent: 100, GroupName: "patrol"}
	if chosen(ro, store.RolloutCandidate{ID: "d", GroupName: "office"}) || !chosen(ro, store.RolloutCandidate{ID: "d", GroupName: "patrol"}) {
		t.Fatal("group not honoured")
	}
}
