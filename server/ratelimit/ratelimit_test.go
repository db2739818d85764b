package ratelimit

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestLimiter(t *testing.T) {
	c := &clock{t: time.Date(2026, 12, 1, 11, 0, 0, 0, time.UTC)}
	l := New(WithLimit(3), WithWindow(time.Minute), WithClock(c.now))
	for i := range 3 {
		if ok, _ := l.Allow("10.0.0.1"); !ok {
			t.Fatalf("guess %d refused under the limit", i+1)
		}
		l.Fail("10.0.0.1")
	}
	c.t = c.t.Add(20 * time.Second)
	for range 5 {
		ok, retry := l.Allow("10.0.0.1")
		if ok || retry != 40*time.Second {
			t.Fatalf("over the limit: ok=%v retry=%v", ok, retry)
		}
	}
	if ok, _ := l.Allow("10.0.0.2"); !ok {
		t.Fatal("another source is limited too")
	}
	if s := l.Sweep(); len(s) != 0 {
		t.Fatalf("summary before the window ended: %+v", s)
	}
	c.t = c.t.Add(41 * time.Second)
	if ok, _ := l.Allow("10.0.0.1"); !ok {
		t.Fatal("still limited after the window")
	}
	s := l.Sweep()
	if len(s) != 1 || s[0].Source != "10.0.0.1" || s[0].Refused != 5 || s[0].Failures != 3 {
		t.Fatalf("summaries = %+v, want one for 10.0.0.1 with 5 refused", s)
	}
	if s := l.Sweep(); len(s) != 0 {
		t.Fatalf("summary returned twice: %+v", s)
	}
}

func TestFlushAndNoRefusal(t *testing.T) {
	c := &clock{t: time.Now()}
	l := New(WithLimit(1), WithClock(c.now))
	l.Fail("a")
	l.Fail("b")
	l.Allow("b")
	s := l.Flush()
	if len(s) != 1 || s[0].Source != "b" || s[0].Refused != 1 {
		t.Fatalf("flush = %+v, want only b (a was never refused)", s)
	}
}

// Each refusal counts under the limiter's name; limiters with different
// names register side by side, and both exist before any refusal.
func TestRefusalsAreCountedPerLimiter(t *testing.T) {
	c := &clock{t: time.Date(2026, 12, 1, 11, 0, 0, 0, time.UTC)}
	keys := New(WithName("api_key"), WithLimit(2), WithClock(c.now))
	tokens := New(WithName("enroll_token"), WithClock(c.now))
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(append(keys.Collectors(), tokens.Collectors()...)...)
	if n, err := testutil.GatherAndCount(reg, "cordon_rate_limited_requests_total"); err != nil || n != 2 {
		t.Fatalf("%d series before any refusal, %v; want one per limiter", n, err)
	}
	for range 2 {
		keys.Allow("10.0.0.1")
		keys.Fail("10.0.0.1")
	}
	for range 3 {
		if ok, _ := keys.Allow("10.0.0.1"); ok {
			t.Fatal("allowed over the limit")
		}
	}
	if n := testutil.ToFloat64(keys.Collectors()[0]); n != 3 {
		t.Fatalf("api_key refusals %v, want 3", n)
	}
	if n := testutil.ToFloat64(tokens.Collectors()[0]); n != 0 {
		t.Fatalf("enroll_token refusals %v, want 0", n)
	}
}
