package api

import (
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cordon-mdm/cordon/internal/needs"
)

// TestOpenAPILint: Redocly CLI's recommended rules (as configured in the
// repository's redocly.yaml, where each rule turned off says why) find no
// error and no warning in the served document. The linter is the version
// scripts/redocly.sh pins, installed by scripts/with-test-services.sh.
func TestOpenAPILint(t *testing.T) {
	root := filepath.Join("..", "..")
	script := filepath.Join(root, "scripts", "redocly.sh")
	needs.Tool(t, "bash", "bash")
	path, err := exec.Command(script, "--path").Output()
	if err != nil {
		needs.Missing(t, "Redocly CLI is not installed (run scripts/redocly.sh --install, or the tests through scripts/with-test-services.sh)")
	}
	cmd := exec.Command(strings.TrimSpace(string(path)), "lint", "--format=json",
		"--config", filepath.Join(root, "redocly.yaml"), filepath.Join("openapi.json"))
	cmd.Env = append(cmd.Environ(), "REDOCLY_TELEMETRY=off", "REDOCLY_SUPPRESS_UPDATE_NOTICE=true")
	out, err := cmd.Output()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatal(err)
	}
	var report struct {
		Totals struct {
			Errors, Warnings int
		} `json:"totals"`
		Problems []struct {
			RuleID   string `json:"ruleId"`
			Severity string `json:"severity"`
			Message  string `json:"message"`
			Location []struct {
				Pointer string `json:"pointer"`
			} `json:"location"`
		} `json:"problems"`
	}
	if jerr := json.Unmarshal(out, &report); jerr != nil {
		t.Fatalf("redocly lint: %v (exit %v)\n%s", jerr, err, out)
	}
	for _, p := range report.Problems {
		where := ""
		if len(p.Location) > 0 {
			where = p.Location[0].Pointer
		}
		t.Errorf("%s %s at %s: %s", p.Severity, p.RuleID, where, p.Message)
	}
	if report.Totals.Errors+report.Totals.Warnings > 0 || err != nil {
		t.Errorf("redocly lint: %d errors, %d warnings (exit %v)", report.Totals.Errors, report.Totals.Warnings, err)
	}
}
