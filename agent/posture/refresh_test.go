package posture

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/protocol"
)

// slowDisk is a platform whose disk read blocks until released, standing
// in for apt-get or the Windows Update search.
type slowDisk struct {
	unsupported
	reads   atomic.Int32
	release chan struct{}
}

func (p *slowDisk) identity(context.Context) protocol.OSIdentity {
	return protocol.OSIdentity{Name: "test"}
}

func (p *slowDisk) disk(context.Context) *protocol.DiskEncryption {
	if p.reads.Add(1) > 1 {
		<-p.release
	}
	return &protocol.DiskEncryption{State: protocol.DiskEncrypted}
}

// TestStaleSectionsRefreshInTheBackground: once a section is cached, a
// slow re-read must not hold up the report that carries the lock.
func TestStaleSectionsRefreshInTheBackground(t *testing.T) {
	p := &slowDisk{unsupported: unsupported{reason: "test"}, release: make(chan struct{})}
	// The patch section refreshes in the background and reads the clock
	// there too: the clock must be safe to read from another goroutine.
	var clock atomic.Int64
	s := NewSystem("test", withPlatform(p), WithIntervals(Intervals{Slow: time.Minute}))
	s.now = func() time.Time { return time.Unix(clock.Load(), 0) }
	ctx := context.Background()
	if r, _ := s.Collect(ctx); r.Disk.State != protocol.DiskEncrypted || p.reads.Load() != 1 {
		t.Fatalf("first collection must read the disk on the spot: %+v", r.Disk)
	}
	clock.Add(int64((2 * time.Minute).Seconds()))
	done := make(chan protocol.Posture)
	go func() { r, _ := s.Collect(ctx); done <- r }()
	select {
	case r := <-done:
		if r.Disk.State != protocol.DiskEncrypted {
			t.Fatalf("stale value not served: %+v", r.Disk)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Collect waited for the slow re-read")
	}
	// One background read at a time, however often the agent polls.
	s.Collect(ctx)
	s.Collect(ctx)
	close(p.release)
	deadline := time.Now().Add(5 * time.Second)
	for p.reads.Load() != 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := p.reads.Load(); n != 2 {
		t.Fatalf("disk read %d times, want 2", n)
	}
}
