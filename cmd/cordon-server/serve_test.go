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

// TestServeConfigFile: the config file takes the flags' names, a flag on
// the command line wins over it, and an unknown key stops the server,
// naming the key, before it touches the data dir.
func TestServeConfigFile(t *testing.T) {
	dir := t.TempDir()
	data := dir + "/data"
	cfg := dir + "/server.yaml"
	write := func(s string) {
		if err := os.WriteFile(cfg, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("data: " + data + "\nlisten: 127.0.0.1:0\nagent-listen: 127.0.0.1:0\nlisten-adress: 127.0.0.1:1\n")
	err := serve([]string{"--config", cfg}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), `unknown key "listen-adress"`) || !strings.Contains(err.Error(), cfg) {
		t.Errorf("unknown key: %v", err)
	}
	if _, statErr := os.Stat(data); !os.IsNotExist(statErr) {
		t.Error("the refused start made the data dir")
	}
	// The server checks the guess limit before the retention, so the
	// retention's refusal shows that the command line's limit replaced
	// the file's zero.
	write("data: " + data + "\nlisten: 127.0.0.1:0\nagent-listen: 127.0.0.1:0\nguess-limit: 0\naudit-retention: 720h\n")
	if err := serve([]string{"--config", cfg}, io.Discard); err == nil || !strings.Contains(err.Error(), "guess limit") {
		t.Errorf("file's guess-limit not applied: %v", err)
	}
	if err := serve([]string{"--config", cfg, "--guess-limit", "5"}, io.Discard); err == nil || !strings.Contains(err.Error(), "shorter than one year") {
		t.Errorf("the command line's guess-limit must win over the file's: %v", err)
	}
}
