//go:build !windows

package enrollment

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	good := `{"server":"https://cordon.example:8443","ca_fingerprint":"` + strings.Repeat("ab", 32) + `","token":"cdt_x"}`
	write := func(name, body string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	f, warn, err := ReadFile(write("ok.json", good, 0o600))
	if err != nil || warn != "" || f.Server != "https://cordon.example:8443" || f.Token != "cdt_x" {
		t.Fatalf("0600 file: %+v %q %v", f, warn, err)
	}
	if _, warn, err := ReadFile(write("readable.json", good, 0o644)); err != nil || !strings.Contains(warn, "readable by every local user") {
		t.Fatalf("0644 file: want a warning, got %q %v", warn, err)
	}
	if _, _, err := ReadFile(write("writable.json", good, 0o666)); err == nil || !strings.Contains(err.Error(), "writable by others") {
		t.Fatalf("0666 file: want a refusal, got %v", err)
	}
	for name, body := range map[string]string{
		"http.json":    strings.Replace(good, "https", "http", 1),
		"unknown.json": strings.Replace(good, `"token"`, `"extra":1,"token"`, 1),
		"nopin.json":   strings.Replace(good, strings.Repeat("ab", 32), "", 1),
		"big.json":     good + strings.Repeat(" ", 5000),
	} {
		if _, _, err := ReadFile(write(name, body, 0o600)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, _, err := ReadFile(dir); err == nil {
		t.Error("a directory was accepted")
	}
}
