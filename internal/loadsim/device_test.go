package loadsim

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/protocol"
)

func TestReportsPassTheServersCheckOnEveryPlatform(t *testing.T) {
	seen := map[string]bool{}
	for i := range 3 * len(Platforms) {
		d := NewDevice(i, 0, "test")
		p, err := d.Collect(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Check(); err != nil {
			t.Errorf("device %d (%s): %v", i, p.OS.Platform, err)
		}
		if p.OS.Platform != d.Facts().Platform {
			t.Errorf("device %d reports %s but enrolled as %s", i, p.OS.Platform, d.Facts().Platform)
		}
		seen[p.OS.Platform] = true
	}
	for _, want := range []string{"windows/amd64", "android/arm64", "linux/amd64", "darwin/arm64"} {
		if !seen[want] {
			t.Errorf("no simulated %s device", want)
		}
	}
}

func TestDeviceIsTheSameEveryRun(t *testing.T) {
	a, _ := NewDevice(7, 0, "test").Collect(context.Background())
	b, _ := NewDevice(7, 0, "test").Collect(context.Background())
	if len(a.Bluetooth.Devices) != len(b.Bluetooth.Devices) || *a.Patch.PendingSecurity != *b.Patch.PendingSecurity {
		t.Error("device 7 differs between two constructions: a cached fleet would change at every run")
	}
}

func TestExecutorActsOnTheSimulatedDeviceOnly(t *testing.T) {
	ctx := context.Background()
	var answered atomic.Int64
	var d *Device
	for i := 0; d == nil; i++ {
		if c := NewDevice(i, 0, "test"); len(c.peers) > 0 {
			d = c
		}
	}
	e := NewExecutor(d, &answered)
	if out := e.Lock(ctx); !out.Done {
		t.Errorf("lock: %+v", out)
	}
	if p, _ := d.Collect(ctx); p.Lock.State != protocol.LockLocked {
		t.Errorf("after a lock command the device reports %s", p.Lock.State)
	}
	d.peers[0].Blocked = false
	if out := e.BluetoothBlock(ctx, d.peers[0].Address); !out.Done {
		t.Errorf("block a known peer: %+v", out)
	}
	if p, _ := d.Collect(ctx); !p.Bluetooth.Devices[0].Blocked {
		t.Error("the blocked peer is not reported blocked")
	}
	if out := e.BluetoothBlock(ctx, "00:00:00:00:00:00"); out.Done {
		t.Error("an unknown peer was reported blocked")
	}
	plan, err := e.Plan(ctx)
	if err != nil || plan.PowerOff || len(plan.LUKSDevices) > 0 || len(plan.CJIPaths) > 0 {
		t.Fatalf("a simulated wipe plans %+v (%v): it must erase nothing and never power the host off", plan, err)
	}
	// Not done: the agent destroys its identity only after a wipe that
	// reports done, and the cached state dir must survive the run.
	if out := e.Erase(ctx, plan); out.Done {
		t.Error("a simulated wipe reports done")
	}
	if got := answered.Load(); got != 4 {
		t.Errorf("%d commands counted, want 4", got)
	}
}

func TestLockChangesReachTheAgent(t *testing.T) {
	d := NewDevice(1, time.Millisecond, "test")
	ctx, cancel := context.WithCancel(context.Background())
	// The callback reads the state it announces: WatchLock waits for it.
	changes := make(chan bool)
	done := make(chan error)
	go func() { done <- d.WatchLock(ctx, func() { changes <- d.isLocked() }) }()
	before := d.isLocked()
	if now := <-changes; now == before {
		t.Error("a lock change was announced without changing the lock state")
	}
	if now := <-changes; now != before {
		t.Error("the next change did not change the state back")
	}
	cancel()
	for {
		select {
		case <-changes:
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			return
		}
	}
}

func TestSourceAddressesAreDistinctAndLoopback(t *testing.T) {
	_, loopback, _ := net.ParseCIDR("127.0.0.0/8")
	seen := map[string]bool{}
	for i := range 200_000 {
		ip := SourceIP(i)
		if !loopback.Contains(ip) {
			t.Fatalf("agent %d leaves from %s, outside 127.0.0.0/8", i, ip)
		}
		v4 := ip.To4()
		for _, b := range v4[1:] {
			if b == 0 || b == 255 {
				t.Fatalf("agent %d leaves from %s", i, ip)
			}
		}
		if seen[ip.String()] {
			t.Fatalf("agent %d shares %s with another", i, ip)
		}
		seen[ip.String()] = true
	}
}
