package server

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cordon-mdm/cordon/internal/swtpm/swtpmtest"
)

// TestTPMEKRootsOption: --tpm-ek-roots reads a PEM bundle, and a file
// without a certificate or missing stops the server rather than leaving
// every TPM device quietly unverified.
func TestTPMEKRootsOption(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "roots.pem")
	os.WriteFile(good, swtpmtest.NewEKCA(t).PEM(), 0o600)
	empty := filepath.Join(dir, "empty.pem")
	os.WriteFile(empty, []byte("not a certificate\n"), 0o600)
	var c config
	if err := WithTPMEKRoots(good)(&c); err != nil || c.ekRoots == nil {
		t.Fatalf("a PEM bundle: %v", err)
	}
	for path, want := range map[string]string{empty: "no PEM certificate", filepath.Join(dir, "nope"): "no such file"} {
		var c config
		if err := WithTPMEKRoots(path)(&c); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", path, err, want)
		}
	}
	if err := WithTPMEKRoots("")(&c); err != nil {
		t.Fatalf("no roots: %v", err)
	}
}
