package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/cordon-mdm/cordon/internal/testenv"
)

// TestCordonctlIncidents runs the built cordonctl against a server: a
// report, the list, one incident, and the LASO closing it; an IT admin's
// close fails with a non-zero exit.
func TestCordonctlIncidents(t *testing.T) {
	e := testenv.New(t, "")
	laso, admin := e.APIKey("laso"), e.APIKey("it-admin")
	a := e.StartAgent(e.MustEnroll())
	waitOnline(t, e, laso, a.DeviceID())
	bin := buildBinary(t, "cordonctl", "")
	ctl := func(key string, args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "CORDON_SERVER="+e.Server.ConsoleURL(), "CORDON_API_KEY="+key,
			"CORDON_CA_FINGERPRINT="+e.Server.CA.RootFingerprint())
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := ctl(e.APIKey("user"), "incident", "report", "--device", a.DeviceID(), "--kind", "loss_of_control",
		"--lock-state", "locked", "--started", "20m", "--location", "jury room", "--description", "laptop left during recess")
	if err != nil {
		t.Fatalf("report: %v\n%s", err, out)
	}
	var inc struct {
		ID, Category, Status string
		DurationClass        string `json:"duration_class"`
	}
	if err := json.Unmarshal([]byte(out), &inc); err != nil || inc.ID == "" || inc.DurationClass != "extended" || inc.Category != "locked_extended" {
		t.Fatalf("report answer %q: %+v %v", out, inc, err)
	}
	if out, err := ctl(laso, "incidents"); err != nil || !strings.Contains(out, inc.ID) || !strings.Contains(out, "locked_extended") {
		t.Fatalf("incidents: %v\n%s", err, out)
	}
	if out, err := ctl(laso, "incident", "show", inc.ID); err != nil || !strings.Contains(out, `"timeline"`) || !strings.Contains(out, "jury room") {
		t.Fatalf("show: %v\n%s", err, out)
	}
	if out, err := ctl(admin, "incident", "close", inc.ID, "--ended", "5m"); err == nil || !strings.Contains(out, "403") {
		t.Fatalf("an IT admin closed an incident: %v\n%s", err, out)
	}
	out, err = ctl(laso, "incident", "close", inc.ID, "--ended", "5m", "--disposition", "recovered by the bailiff; no CJI exposed")
	if err != nil {
		t.Fatalf("close: %v\n%s", err, out)
	}
	json.Unmarshal([]byte(out), &inc)
	if inc.Status != "closed" {
		t.Fatalf("closed answer: %s", out)
	}
	if out, err := ctl(laso, "incident", "form", inc.ID); err != nil || !strings.Contains(out, "recovered by the bailiff") {
		t.Fatalf("form: %v\n%s", err, out)
	}
}
