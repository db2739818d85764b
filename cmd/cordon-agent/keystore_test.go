package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cordon-mdm/cordon/internal/swtpm/swtpmtest"
)

// TestKeystoreFlags: --keystore tpm --swtpm makes the key in that TPM
// (before the server is even reached); a bad --keystore is refused.
func TestKeystoreFlags(t *testing.T) {
	sim := swtpmtest.Start(t)
	dir := filepath.Join(t.TempDir(), "agent")
	err := run([]string{"enroll", "--server", "https://127.0.0.1:1", "--token", "t", "--keystore", "tpm",
		"--swtpm", sim.Addr, "--state", dir}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "enroll") {
		t.Fatalf("enroll against no server: %v", err)
	}
	for _, f := range []string{"tpm-key.pub", "tpm-key.priv"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("--keystore tpm --swtpm: %v", err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "key.pem")); err == nil {
		t.Error("--keystore tpm wrote a file key")
	}
	err = run([]string{"enroll", "--server", "https://127.0.0.1:1", "--token", "t", "--keystore", "hsm", "--state", t.TempDir()}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--keystore") {
		t.Fatalf("--keystore hsm: %v", err)
	}
}
