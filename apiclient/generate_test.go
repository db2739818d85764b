package apiclient

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGeneratedClientIsCurrent runs the generator as `make generate`
// does, into a temporary file, and fails when the committed client.gen.go
// differs: a change to the OpenAPI document (or to the generator's
// version in go.mod) must come with the regenerated client.
func TestGeneratedClientIsCurrent(t *testing.T) {
	cfg, err := os.ReadFile("oapi-codegen.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// The config names the output file, and oapi-codegen lets the config
	// win over -o, so the test writes the same config with its own output.
	const output = "\noutput: client.gen.go\n"
	if !bytes.Contains(cfg, []byte(output)) {
		t.Fatalf("oapi-codegen.yaml no longer says %q; update this test with it", strings.TrimSpace(output))
	}
	dir := t.TempDir()
	fresh := filepath.Join(dir, "client.gen.go")
	tmpCfg := filepath.Join(dir, "oapi-codegen.yaml")
	if err := os.WriteFile(tmpCfg, bytes.Replace(cfg, []byte(output), []byte("\noutput: "+fresh+"\n"), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "tool", "oapi-codegen", "-config", tmpCfg, "../server/api/openapi.json")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go tool oapi-codegen: %v\n%s", err, out)
	}
	want, err := os.ReadFile(fresh)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("client.gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("apiclient/client.gen.go is not what the generator makes of server/api/openapi.json: run make generate and commit the result")
	}
}
