package apiclient

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestREADMEExampleBuilds: the Go example in the README's "Integrating"
// section compiles against this client as generated now, so a change to
// the document that renames a field cannot leave the README wrong. It is
// built through an overlay, as if it were a package of this module,
// without writing into the tree.
func TestREADMEExampleBuilds(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## Integrating\n")
	if !ok {
		t.Fatal(`README has no "## Integrating" section`)
	}
	_, code, ok := strings.Cut(section, "```go\npackage main\n")
	if !ok {
		t.Fatal("the Integrating section has no Go example (```go, package main)")
	}
	code, _, _ = strings.Cut(code, "```")
	dir := t.TempDir()
	src := filepath.Join(dir, "main.go")
	if err := os.WriteFile(src, []byte("package main\n"+code), 0o600); err != nil {
		t.Fatal(err)
	}
	virtual, err := filepath.Abs("readmeexample/main.go")
	if err != nil {
		t.Fatal(err)
	}
	overlay, _ := json.Marshal(map[string]any{"Replace": map[string]string{virtual: src}})
	ov := filepath.Join(dir, "overlay.json")
	if err := os.WriteFile(ov, overlay, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-overlay", ov, "-o", filepath.Join(dir, "example"), "./readmeexample")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the README's example does not build: %v\n%s\n%s", err, out, code)
	}
}
