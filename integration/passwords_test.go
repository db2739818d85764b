package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cordon-mdm/cordon/server"
	"github.com/cordon-mdm/cordon/server/store"
)

// TestConsolePasswordRules: `cordon-server user add` and `user passwd`
// apply the CJIS password rules (length, not the user id, not common, not
// one of the last ten) and every change, refused ones too, is audited.
func TestConsolePasswordRules(t *testing.T) {
	bin := buildServer(t, "")
	data := t.TempDir()
	pwFile := filepath.Join(t.TempDir(), "pw")
	run := func(pw string, args ...string) (string, error) {
		os.WriteFile(pwFile, []byte(pw+"\n"), 0o600)
		out, err := exec.Command(bin, append(args, "--data", data, "--password-file", pwFile)...).CombinedOutput()
		return string(out), err
	}
	add := []string{"user", "add", "--email", "lt.chen@pd.example", "--role", "laso"}
	passwd := []string{"user", "passwd", "--email", "lt.chen@pd.example"}
	for pw, why := range map[string]string{"Password2024!": "common", "lt.chen-secure-99": "user id", "short": "at least 12"} {
		if out, err := run(pw, add...); err == nil || !strings.Contains(out, why) {
			t.Errorf("user add with %q: %v %s", pw, err, out)
		}
	}
	if out, err := run("amber window ferry 31", add...); err != nil {
		t.Fatalf("user add: %v %s", err, out)
	}
	if out, err := run("amber window ferry 31", passwd...); err == nil || !strings.Contains(out, "last 10") {
		t.Fatalf("reusing the current password: %v %s", err, out)
	}
	for _, pw := range []string{"quiet harbor stone 52", "maple circuit drum 18"} {
		if out, err := run(pw, passwd...); err != nil {
			t.Fatalf("passwd %q: %v %s", pw, err, out)
		}
	}
	if out, err := run("quiet harbor stone 52", passwd...); err == nil || !strings.Contains(out, "last 10") {
		t.Fatalf("an earlier password came back: %v %s", err, out)
	}
	adm, err := server.OpenAdmin(context.Background(), data, "")
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	entries, err := adm.Store.ListAudit(context.Background(), store.AuditQuery{Action: "user.password_changed"})
	if err != nil {
		t.Fatal(err)
	}
	outcomes := map[string]int{}
	for _, e := range entries {
		outcomes[e.Outcome]++
	}
	if outcomes["success"] != 2 || outcomes["failure"] != 2 {
		t.Fatalf("password change audit %v", outcomes)
	}
}
