package main

import (
	"io"
	"os"
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

// TestServeRefusesARetentionUnderAYear: AU-11 keeps audit records a
// year; a shorter --audit-retention stops the server before it touches
// the data dir, saying why.
func TestServeRefusesARetentionUnderAYear(t *testing.T) {
	for _, v := range []string{"8759h", "720h", "0s"} {
		dir := t.TempDir() + "/data"
		err := serve([]string{"--audit-retention", v, "--data", dir, "--listen", "127.0.0.1:0", "--agent-listen", "127.0.0.1:0"}, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "shorter than one year (8760h)") || !strings.Contains(err.Error(), "does not start") {
			t.Errorf("--audit-retention %s: %v", v, err)
		}
		if _, statErr := os.Stat(dir); !os.IsNotExist(statErr) {
			t.Errorf("--audit-retention %s: the refused start made the data dir", v)
		}
	}
}

// TestServeRefusesAnAppleQueryIntervalUnderAMinute: every round wakes
// every Apple device through APNs.
func TestServeRefusesAnAppleQueryIntervalUnderAMinute(t *testing.T) {
	err := serve([]string{"--apple-query-interval", "30s", "--data", t.TempDir(), "--listen", "127.0.0.1:0", "--agent-listen", "127.0.0.1:0"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--apple-query-interval") {
		t.Errorf("--apple-query-interval 30s: %v", err)
	}
}
