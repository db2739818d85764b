package agent

import (
	"errors"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/protocol"
)

func TestBackoffIsCappedFullJitter(t *testing.T) {
	a := &Agent{backoffBase: 100 * time.Millisecond, backoffMax: 2 * time.Second}
	for attempt, ceil := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond} {
		seen := map[time.Duration]bool{}
		for range 200 {
			d := a.backoff(attempt)
			if d < 0 || d >= ceil {
				t.Fatalf("attempt %d: %v outside [0, %v)", attempt, d, ceil)
			}
			seen[d] = true
		}
		if len(seen) < 50 {
			t.Fatalf("attempt %d: only %d distinct delays; no jitter", attempt, len(seen))
		}
	}
	for range 200 {
		if d := a.backoff(60); d >= 2*time.Second {
			t.Fatalf("delay %v beyond the cap", d)
		}
	}
}

// drawn returns n delays from f and checks they lie in [lo, hi) and are
// spread (not one value).
func drawn(t *testing.T, what string, lo, hi time.Duration, f func() time.Duration) {
	t.Helper()
	seen := map[time.Duration]bool{}
	var top time.Duration
	for range 400 {
		d := f()
		if d < lo || d >= hi {
			t.Fatalf("%s: %v outside [%v, %v)", what, d, lo, hi)
		}
		seen[d] = true
		top = max(top, d)
	}
	if len(seen) < 50 {
		t.Fatalf("%s: only %d distinct delays; no jitter", what, len(seen))
	}
	// Uniform over the window: 400 draws reach its last quarter.
	if top < lo+(hi-lo)*3/4 {
		t.Fatalf("%s: the largest of 400 draws is %v, not spread over [%v, %v)", what, top, lo, hi)
	}
}

func TestFirstRetryIsSpreadOverTheServersHint(t *testing.T) {
	a := &Agent{backoffBase: time.Second, backoffMax: 5 * time.Minute}
	a.spread.Store(-1)
	drawn(t, "without a hint", 0, defaultSpread, a.firstRetry)
	a.spread.Store(27_000) // 19,000 agents at ~700 handshakes/s
	drawn(t, "with a 27 s hint", 0, 27*time.Second, a.firstRetry)
	a.spread.Store(3_600_000)
	drawn(t, "a hint above the bound", 0, protocol.MaxReconnectSpread, a.firstRetry)
	a.spread.Store(2) // a server with a handful of agents
	drawn(t, "a tiny hint", 0, time.Second, a.firstRetry)
	// WithBackoff's max stays the most an agent ever waits (tests).
	quick := &Agent{backoffBase: 50 * time.Millisecond, backoffMax: time.Second}
	quick.spread.Store(-1)
	drawn(t, "a short backoff maximum", 0, time.Second, quick.firstRetry)
}

func TestRefusalsWaitAsTheServerSaid(t *testing.T) {
	a := &Agent{backoffBase: time.Second, backoffMax: 5 * time.Minute}
	a.spread.Store(20_000)
	drawn(t, "refused before the handshake", 0, 20*time.Second, func() time.Duration {
		return a.retryDelay(1, &busyError{err: errors.New("remote error")})
	})
	drawn(t, "refused, the backoff grown past the hint", 0, 64*time.Second, func() time.Duration {
		return a.retryDelay(6, &busyError{err: errors.New("remote error")})
	})
	drawn(t, "503 with Retry-After: 8", 8*time.Second, 16*time.Second, func() time.Duration {
		return a.retryDelay(0, &busyError{retryAfter: 8 * time.Second, err: errors.New("503")})
	})
	drawn(t, "any other failure", 0, 4*time.Second, func() time.Duration {
		return a.retryDelay(2, errors.New("connection refused"))
	})
}
