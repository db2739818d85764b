package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
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
		out, err := cordonctlCmd(bin, e, key, args...).CombinedOutput()
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

// TestCordonctlBluetoothAndCompliance: the allow-list, a request through
// its workflow, a profile round trip and the access decision, all from
// cordonctl.
func TestCordonctlBluetoothAndCompliance(t *testing.T) {
	e := testenv.New(t, "")
	admin, user, sergeant := e.APIKey("it-admin"), e.APIKey("user"), e.APIKey("user")
	a := e.StartAgent(e.MustEnroll())
	waitOnline(t, e, admin, a.DeviceID())
	bin := buildBinary(t, "cordonctl", "")
	ctl := func(key string, args ...string) (string, error) {
		out, err := cordonctlCmd(bin, e, key, args...).CombinedOutput()
		return string(out), err
	}
	if out, err := ctl(admin, "bt", "allow", "aa:bb:cc", "--reason", "department radios (OUI)", "--name", "Motorola"); err != nil {
		t.Fatalf("allow: %v\n%s", err, out)
	}
	if out, err := ctl(admin, "bt", "list"); err != nil || !strings.Contains(out, "AA:BB:CC") || !strings.Contains(out, "agency") {
		t.Fatalf("list: %v\n%s", err, out)
	}
	if out, err := ctl(user, "bt", "allow", "11:22:33:44:55:66", "--reason", "mine"); err == nil || !strings.Contains(out, "403") {
		t.Fatalf("a user added to the allow-list: %v\n%s", err, out)
	}
	sup := supervisorName(t, e, sergeant)
	out, err := ctl(user, "bt", "request", "--device", a.DeviceID(), "--address", "11:22:33:44:55:66", "--reason", "body camera link",
		"--supervisor", strings.TrimPrefix(sup, "apikey:"))
	if err != nil {
		t.Fatalf("request: %v\n%s", err, out)
	}
	var req struct{ ID, Status string }
	json.Unmarshal([]byte(out), &req)
	if out, err := ctl(sergeant, "bt", "endorse", req.ID); err != nil || !strings.Contains(out, "endorsed") {
		t.Fatalf("endorse: %v\n%s", err, out)
	}
	if out, err := ctl(admin, "bt", "approve", req.ID, "--reason", "evaluated", "--expires", "720h"); err != nil || !strings.Contains(out, "approved") {
		t.Fatalf("approve: %v\n%s", err, out)
	}
	if out, err := ctl(admin, "bt", "remove", "AA:BB:CC"); err != nil {
		t.Fatalf("remove: %v\n%s", err, out)
	}

	profile := filepath.Join(t.TempDir(), "p.yaml")
	os.WriteFile(profile, []byte("name: cjis-baseline\ncontrols:\n  session_lock: {required: true, max_timeout: 45m}\n"), 0o600)
	if out, err := ctl(admin, "profile", "put", "cjis-baseline", profile); err == nil || !strings.Contains(out, "line 3") {
		t.Fatalf("invalid profile: %v\n%s", err, out)
	}
	if out, err := ctl(admin, "profile", "get", "cjis-baseline"); err != nil || !strings.Contains(out, "max_timeout: 30m") {
		t.Fatalf("get: %v\n%s", err, out)
	}
	if out, err := ctl(admin, "device", "access", a.DeviceID()); err != nil || !strings.Contains(out, `"decision"`) {
		t.Fatalf("access: %v\n%s", err, out)
	}
	if out, err := ctl(admin, "compliance"); err != nil || !strings.Contains(out, `"states"`) {
		t.Fatalf("compliance: %v\n%s", err, out)
	}
}

// TestCordonctlForScripts: -o json, exit codes by outcome, tokens and the
// audit trail.
func TestCordonctlForScripts(t *testing.T) {
	e := testenv.New(t, "")
	admin, auditor, user := e.APIKey("it-admin"), e.APIKey("auditor"), e.APIKey("user")
	bin := buildBinary(t, "cordonctl", "")
	ctl := func(key string, args ...string) (string, int) {
		cmd := cordonctlCmd(bin, e, key, args...)
		out, _ := cmd.Output()
		return string(out), cmd.ProcessState.ExitCode()
	}
	tok, code := ctl(admin, "tokens", "create", "--uses", "1", "--owner", "officer@pd.example")
	if code != 0 || !strings.HasPrefix(tok, "cdt_") || strings.Count(tok, "\n") != 1 {
		t.Fatalf("tokens create: %d %q", code, tok)
	}
	dir, err := e.Enroll(strings.TrimSpace(tok))
	if err != nil {
		t.Fatalf("enroll with the token cordonctl made: %v", err)
	}
	a := e.StartAgent(dir)
	waitOnline(t, e, admin, a.DeviceID())
	out, code := ctl(admin, "-o", "json", "devices")
	var list struct {
		Devices []struct {
			ID, Owner string
		} `json:"devices"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list.Devices) != 1 || list.Devices[0].Owner != "officer@pd.example" {
		t.Fatalf("-o json devices: %d %s", code, out)
	}
	if out, code := ctl(admin, "devices"); code != 0 || !strings.Contains(out, "ID") || !strings.Contains(out, a.DeviceID()) {
		t.Fatalf("devices table: %d %s", code, out)
	}
	for _, c := range []struct {
		key  string
		args []string
		want int
	}{
		{admin, []string{"frobnicate"}, 2},
		{"", []string{"devices"}, 2}, // no key: refused locally, before any request
		{"not-a-key", []string{"devices"}, 3},
		{user, []string{"devices"}, 3},
		{admin, []string{"device", "show", "no-such-device"}, 4},
		{admin, []string{"incident", "report", "--device", a.DeviceID(), "--started", "5m", "--kind", "stolen"}, 5},
	} {
		if _, code := ctl(c.key, c.args...); code != c.want {
			t.Errorf("%v: exit %d, want %d", c.args, code, c.want)
		}
	}
	if out, code := ctl(auditor, "audit", "verify"); code != 0 || !strings.Contains(out, `"ok": true`) {
		t.Fatalf("audit verify: %d %s", code, out)
	}
	out, code = ctl(auditor, "audit", "export")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) < 3 {
		t.Fatalf("audit export: %d %s", code, out)
	}
	var first struct {
		Seq    int    `json:"seq"`
		Action string `json:"action"`
	}
	if json.Unmarshal([]byte(lines[0]), &first) != nil || first.Seq != 1 {
		t.Fatalf("first exported entry %q", lines[0])
	}
}

// cordonctlCmd is the built cordonctl, configured as an administrator
// would for e's server, acting with key.
func cordonctlCmd(bin string, e *testenv.Env, key string, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "CORDON_SERVER="+e.Server.ConsoleURL(), "CORDON_API_KEY="+key,
		"CORDON_CA_FINGERPRINT="+e.Server.CA.RootFingerprint())
	return cmd
}
