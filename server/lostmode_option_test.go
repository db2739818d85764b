package server

import (
	"strings"
	"testing"
)

// What a found device shows is text like any other: no control
// characters, and a length the lock screen can hold.
func TestLostModeMessage(t *testing.T) {
	var c config
	for _, bad := range [][2]string{{"call \x1b[2J", ""}, {strings.Repeat("a", 513), ""}, {"", "555\n0100"}} {
		if err := WithLostModeMessage(bad[0], bad[1])(&c); err == nil {
			t.Errorf("%q, %q accepted", bad[0], bad[1])
		}
	}
	if err := WithLostModeMessage("Property of Example County Sheriff.\nPlease call:", "+1 555 0100")(&c); err != nil ||
		c.lostModePhone != "+1 555 0100" {
		t.Fatal(err, c)
	}
}
