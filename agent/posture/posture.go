// Package posture collects the device's posture for the agent's reports.
//
// System is portable: it asks one per-OS platform (os_linux.go,
// os_darwin.go, os_windows.go, os_android.go) for each section and caches
// the expensive ones. The parsing of each OS's tools and interfaces lives
// in a package per OS (posture/linux, posture/macos, posture/windows,
// posture/android) so that it is tested on every build host. A value that
// cannot be read is reported with the reason, never as a default.
package posture

import (
	"context"
	"log/slog"
	"maps"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/cordon-mdm/cordon/protocol"
)

// Collector produces a posture report.
type Collector interface {
	Collect(ctx context.Context) (protocol.Posture, error)
}

// LockWatcher is implemented by collectors that learn of lock changes as
// they happen (logind on Linux). The agent then reports within a second
// of a change instead of waiting for its next poll.
type LockWatcher interface {
	// WatchLock calls changed after each lock or unlock until ctx ends.
	WatchLock(ctx context.Context, changed func()) error
}

// platform reads one operating system. Every method returns a non-nil
// section whose Provenance explains each value it could not read.
type platform interface {
	identity(ctx context.Context) protocol.OSIdentity
	lock(ctx context.Context) *protocol.LockState
	lockPolicy(ctx context.Context) *protocol.LockPolicy
	disk(ctx context.Context) *protocol.DiskEncryption
	patch(ctx context.Context) *protocol.PatchLevel
	bluetooth(ctx context.Context) *protocol.Bluetooth
	hygiene(ctx context.Context) *protocol.Hygiene
	// watchLock blocks delivering lock changes; errors.ErrUnsupported
	// where the platform has no change notification.
	watchLock(ctx context.Context, changed func()) error
	close() error
}

// Intervals between refreshes of each section. The lock state is read for
// every report; the rest changes slowly and some of it (counting pending
// updates) costs seconds of CPU.
type Intervals struct {
	Bluetooth time.Duration // default 1 minute
	Slow      time.Duration // lock policy, disk, hygiene; default 15 minutes
	Patch     time.Duration // pending updates; default 6 hours
}

// System collects from the running system.
type System struct {
	agentVersion string
	p            platform
	iv           Intervals
	now          func() time.Time

	mu    sync.Mutex
	cache map[string]cached

	log       *slog.Logger
	sightings Sightings
	sightMu   sync.Mutex
	seen      map[string]time.Time // nil until loaded
}

// Sightings keeps when each pending security update was first seen, so
// that an update whose release date the platform does not give keeps its
// clock across agent restarts (SI-2 windows). The agent's state dir
// implements it.
type Sightings interface {
	LoadSightings() (map[string]time.Time, error)
	SaveSightings(map[string]time.Time) error
}

// WithSightings persists first sightings of pending updates; without it
// they last as long as the process.
func WithSightings(st Sightings) Option { return func(s *System) { s.sightings = st } }

// WithLogger logs what the collector cannot do quietly (persisting
// sightings).
func WithLogger(l *slog.Logger) Option { return func(s *System) { s.log = l } }

type cached struct {
	at         time.Time
	value      any
	refreshing bool // a background read is under way
}

// Option configures a System.
type Option func(*System)

// WithIntervals overrides the refresh intervals (zero keeps a default).
func WithIntervals(iv Intervals) Option {
	return func(s *System) {
		if iv.Bluetooth > 0 {
			s.iv.Bluetooth = iv.Bluetooth
		}
		if iv.Slow > 0 {
			s.iv.Slow = iv.Slow
		}
		if iv.Patch > 0 {
			s.iv.Patch = iv.Patch
		}
	}
}

// withPlatform replaces the OS with a test double.
func withPlatform(p platform) Option { return func(s *System) { s.p = p } }

// NewSystem returns a collector for this machine. Close releases its
// connections (D-Bus on Linux).
func NewSystem(agentVersion string, opts ...Option) *System {
	s := &System{agentVersion: agentVersion, now: time.Now, cache: map[string]cached{}, log: slog.New(slog.DiscardHandler),
		iv: Intervals{Bluetooth: time.Minute, Slow: 15 * time.Minute, Patch: 6 * time.Hour}}
	for _, o := range opts {
		o(s)
	}
	if s.p == nil {
		s.p = newPlatform()
	}
	return s
}

// Close releases the platform's resources.
func (s *System) Close() error { return s.p.close() }

// Collect implements Collector: the lock state fresh, every other
// section from cache, refreshed in the background once its interval has
// passed.
func (s *System) Collect(ctx context.Context) (protocol.Posture, error) {
	id := *refresh(s, "os", s.iv.Slow, func() *protocol.OSIdentity { v := s.p.identity(ctx); return &v })
	id.AgentVersion = s.agentVersion
	id.Platform = runtime.GOOS + "/" + runtime.GOARCH
	if h, err := os.Hostname(); err == nil {
		id.Hostname = h
	}
	return protocol.Posture{
		CollectedAt: s.now().UTC(),
		OS:          *printable(&id),
		Lock:        printable(s.p.lock(ctx)),
		LockPolicy:  refresh(s, "lock_policy", s.iv.Slow, func() *protocol.LockPolicy { return s.p.lockPolicy(ctx) }),
		Disk:        refresh(s, "disk", s.iv.Slow, func() *protocol.DiskEncryption { return s.p.disk(ctx) }),
		Patch:       refreshPatch(s, ctx),
		Bluetooth:   refresh(s, "bluetooth", s.iv.Bluetooth, func() *protocol.Bluetooth { return s.p.bluetooth(ctx) }),
		Hygiene:     refresh(s, "hygiene", s.iv.Slow, func() *protocol.Hygiene { return s.p.hygiene(ctx) }),
	}, nil
}

// Refresh reads every section now, on the caller's goroutine, and
// caches the result: a full collection, for `make bench` and for callers
// that must not see a section still being read.
func (s *System) Refresh(ctx context.Context) (protocol.Posture, error) {
	read := map[string]func() any{
		"os":          func() any { v := s.p.identity(ctx); return &v },
		"lock_policy": func() any { return s.p.lockPolicy(ctx) },
		"disk":        func() any { return s.p.disk(ctx) },
		"patch":       func() any { return s.stamp(s.p.patch(ctx)) },
		"bluetooth":   func() any { return s.p.bluetooth(ctx) },
		"hygiene":     func() any { return s.p.hygiene(ctx) },
	}
	for key, r := range read {
		v := printableAny(r())
		s.mu.Lock()
		s.cache[key] = cached{at: s.now(), value: v}
		s.mu.Unlock()
	}
	return s.Collect(ctx)
}

// Invalidate forces every cached section to be read again at the next
// Collect (after a command changed the device, say).
func (s *System) Invalidate() {
	s.mu.Lock()
	clear(s.cache)
	s.mu.Unlock()
}

// WatchLock implements LockWatcher where the platform can.
func (s *System) WatchLock(ctx context.Context, changed func()) error {
	return s.p.watchLock(ctx, changed)
}

// refresh returns a section no older than every, reading it on the
// caller's goroutine only the first time. Later a stale section is
// returned as it is while a background read replaces it, so a slow tool
// (apt-get resolving, the Windows Update search) never delays a lock
// report; the next poll picks up the new value.
func refresh[T any](s *System, key string, every time.Duration, read func() *T) *T {
	return refreshOr(s, key, every, read, nil)
}

// refreshPatch never reads on the caller's goroutine: counting pending
// updates takes seconds, so the first report says it is under way and a
// later one carries the counts.
func refreshPatch(s *System, ctx context.Context) *protocol.PatchLevel {
	return refreshOr(s, "patch", s.iv.Patch, func() *protocol.PatchLevel { return s.stamp(s.p.patch(ctx)) }, func() *protocol.PatchLevel {
		p := &protocol.PatchLevel{}
		for _, f := range []string{"pending_security", "last_update", "reboot_required"} {
			p.SetUnknown(f, "first check since the agent started is still running")
		}
		return p
	})
}

// stamp gives each pending update the time this agent first saw it
// pending, from the sightings kept so far, and keeps the sightings of the
// updates still pending only: one installed and offered again later
// starts a new clock, as it is a new pending period. A read that could
// not list pending updates says nothing about them and changes nothing.
func (s *System) stamp(pl *protocol.PatchLevel) *protocol.PatchLevel {
	if pl == nil || pl.PendingSecurity == nil {
		return pl
	}
	s.sightMu.Lock()
	defer s.sightMu.Unlock()
	if s.seen == nil {
		s.seen = map[string]time.Time{}
		if s.sightings != nil {
			m, err := s.sightings.LoadSightings()
			if err != nil {
				s.log.Warn("pending-update sightings unreadable; their clocks start now", "err", err)
			}
			maps.Copy(s.seen, m)
		}
	}
	now := s.now().UTC()
	next := make(map[string]time.Time, len(pl.Pending))
	for i := range pl.Pending {
		u := &pl.Pending[i]
		t, ok := next[u.Name]
		if !ok {
			t, ok = s.seen[u.Name]
		}
		// A sighting in the future was made with a wrong clock: it would
		// hold the clock back, so it becomes now.
		if !ok || t.After(now) {
			t = u.FirstSeen
			if t.IsZero() || t.After(now) {
				t = now
			}
		}
		u.FirstSeen, next[u.Name] = t, t
	}
	if !maps.EqualFunc(next, s.seen, time.Time.Equal) {
		s.seen = next
		if s.sightings != nil {
			if err := s.sightings.SaveSightings(next); err != nil {
				s.log.Warn("cannot keep pending-update sightings; a restart will restart their clocks", "err", err)
			}
		}
	}
	return pl
}

// refreshOr is refresh; with pending non-nil, the first read also runs
// in the background and pending stands in until it is done.
func refreshOr[T any](s *System, key string, every time.Duration, read, pending func() *T) *T {
	s.mu.Lock()
	c, ok := s.cache[key]
	if !ok && pending != nil {
		c = cached{at: time.Time{}, value: printable(pending())}
		s.cache[key] = c
		ok = true
	}
	if ok {
		if s.now().Sub(c.at) >= every && !c.refreshing {
			c.refreshing = true
			s.cache[key] = c
			go func() {
				v := printable(read())
				s.mu.Lock()
				s.cache[key] = cached{at: s.now(), value: v}
				s.mu.Unlock()
			}()
		}
		s.mu.Unlock()
		return c.value.(*T)
	}
	s.mu.Unlock()
	v := printable(read())
	s.mu.Lock()
	s.cache[key] = cached{at: s.now(), value: v}
	s.mu.Unlock()
	return v
}

// Facts returns what enrollment reports about the device, without the
// expensive sections.
func Facts(ctx context.Context, agentVersion string) protocol.DeviceFacts {
	p := newPlatform()
	defer p.close()
	id := p.identity(ctx)
	h, _ := os.Hostname()
	return protocol.DeviceFacts{Hostname: h, Platform: runtime.GOOS + "/" + runtime.GOARCH, OSName: id.Name,
		OSVersion: id.Version, AgentVersion: agentVersion}
}
