package main

import (
	"io"
	"strings"
	"testing"
)

// TestServeRefusesANonsenseGuessLimit: a limit of zero would refuse every
// enrollment and every API call; the server says so and does not start.
func TestServeRefusesANonsenseGuessLimit(t *testing.T) {
	for _, args := range [][]string{{"--guess-limit", "0"}, {"--guess-window", "0s"}} {
		err := serve(append(args, "--data", t.TempDir(), "--listen", "127.0.0.1:0", "--agent-listen", "127.0.0.1:0"), io.Discard)
		if err == nil || !strings.Contains(err.Error(), "guess limit") {
			t.Errorf("serve %v: %v", args, err)
		}
	}
}
