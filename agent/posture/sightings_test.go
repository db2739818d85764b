package posture

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/agent/state"
	"github.com/cordon-mdm/cordon/protocol"
)

// pendingPlatform reports whatever security updates the test says are
// pending, stamped with the collector's own clock as a platform that knows
// no release date does.
type pendingPlatform struct {
	unsupported
	mu      sync.Mutex
	pending []string
	now     func() time.Time
}

func (p *pendingPlatform) identity(context.Context) protocol.OSIdentity {
	return protocol.OSIdentity{Name: "test"}
}

func (p *pendingPlatform) patch(context.Context) *protocol.PatchLevel {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.pending)
	pl := &protocol.PatchLevel{PendingSecurity: &n}
	for _, name := range p.pending {
		pl.Pending = append(pl.Pending, protocol.PendingUpdate{Name: name, Severity: protocol.SeverityUnknown, FirstSeen: p.now()})
	}
	return pl
}

func (p *pendingPlatform) set(names ...string) {
	p.mu.Lock()
	p.pending = names
	p.mu.Unlock()
}

// TestFirstSightingSurvivesARestart: the date an update was first seen
// pending is kept in the agent's state dir, so a new agent process (a new
// System over a fresh load of the same dir) reports the original date,
// not its own start; an update no longer pending is dropped, and offered
// again it starts a new clock.
func TestFirstSightingSurvivesARestart(t *testing.T) {
	dir := state.Dir{Path: t.TempDir()}
	t0 := time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)
	clock := t0
	now := func() time.Time { return clock }
	ctx := context.Background()
	first := func(s *System) map[string]time.Time {
		t.Helper()
		r, err := s.Refresh(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]time.Time{}
		for _, u := range r.Patch.Pending {
			out[u.Name] = u.FirstSeen
		}
		return out
	}
	start := func(p *pendingPlatform) *System {
		s := NewSystem("test", withPlatform(p), WithSightings(state.Dir{Path: dir.Path}))
		s.now = now
		return s
	}

	p := &pendingPlatform{unsupported: unsupported{reason: "test"}, now: now}
	p.set("openssl")
	if got := first(start(p)); !got["openssl"].Equal(t0) {
		t.Fatalf("first run: %v", got)
	}

	// Three days later, a new process: openssl keeps t0, a new update
	// starts at the new time.
	clock = t0.Add(72 * time.Hour)
	p = &pendingPlatform{unsupported: unsupported{reason: "test"}, now: now}
	p.set("openssl", "libc6")
	s := start(p)
	if got := first(s); !got["openssl"].Equal(t0) || !got["libc6"].Equal(clock) {
		t.Fatalf("after the restart: %v, want openssl at %v and libc6 at %v", got, t0, clock)
	}
	saved, err := dir.LoadSightings()
	if err != nil || len(saved) != 2 || !saved["openssl"].Equal(t0) {
		t.Fatalf("state dir holds %v (%v)", saved, err)
	}

	// openssl installed: dropped from the state; offered again later, a
	// new pending period with its own clock.
	clock = clock.Add(time.Hour)
	p.set("libc6")
	first(s)
	if saved, _ := dir.LoadSightings(); len(saved) != 1 || saved["openssl"] != (time.Time{}) {
		t.Fatalf("installed update kept: %v", saved)
	}
	clock = clock.Add(time.Hour)
	p.set("libc6", "openssl")
	if got := first(start(p)); !got["openssl"].Equal(clock) || !got["libc6"].Equal(t0.Add(72*time.Hour)) {
		t.Fatalf("offered again: %v", got)
	}

	// A read that could not list updates changes nothing.
	p2 := &failingPatch{unsupported{reason: "apt-get failed"}}
	s2 := NewSystem("test", withPlatform(p2), WithSightings(state.Dir{Path: dir.Path}))
	s2.Refresh(ctx)
	if saved, _ := dir.LoadSightings(); len(saved) != 2 {
		t.Fatalf("a failed read dropped sightings: %v", saved)
	}
}

type failingPatch struct{ unsupported }

func (failingPatch) identity(context.Context) protocol.OSIdentity {
	return protocol.OSIdentity{Name: "test"}
}
