//go:build linux

package bench

import "testing"

// TestFleetSplit: every agent belongs to exactly one server process, the
// one it enrolled with, and commands go to the process it connects to.
func TestFleetSplit(t *testing.T) {
	for _, tc := range []struct{ agents, servers int }{{10, 1}, {100000, 5}, {1003, 2}, {7, 7}} {
		c := fleetConfig{agents: tc.agents, servers: tc.servers}
		next := 0
		for k := range c.servers {
			first, count := c.group(k)
			if first != next || count < 1 {
				t.Fatalf("%+v: server %d has [%d, %d+%d), want it to start at %d", tc, k, first, first, count, next)
			}
			for i := first; i < first+count; i++ {
				if got := c.serverOf(i); got != k {
					t.Fatalf("%+v: agent %d goes to server %d, enrolled with %d", tc, i, got, k)
				}
			}
			next = first + count
		}
		if next != c.agents {
			t.Errorf("%+v: %d agents split, want %d", tc, next, c.agents)
		}
	}
}
