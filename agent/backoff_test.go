package agent

import (
	"testing"
	"time"
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
