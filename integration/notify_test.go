package integration

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/internal/needs"
	"github.com/cordon-mdm/cordon/internal/testenv"
	"github.com/cordon-mdm/cordon/server"
)

// smtpServer runs Debian's aiosmtpd, a real SMTP implementation in its own
// process, storing every message it accepts in a Maildir.
type smtpServer struct {
	t    *testing.T
	addr string
	dir  string
	cmd  *exec.Cmd
}

func startSMTP(t *testing.T, addr, dir string) *smtpServer {
	t.Helper()
	if err := exec.Command("/usr/bin/python3", "-c", "import aiosmtpd").Run(); err != nil {
		needs.Missing(t, "Debian package python3-aiosmtpd is missing")
	}
	s := &smtpServer{t: t, addr: addr, dir: dir}
	s.cmd = exec.Command("/usr/bin/python3", "-m", "aiosmtpd", "-n", "-l", addr, "-c", "aiosmtpd.handlers.Mailbox", dir)
	s.cmd.Stderr = os.Stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.stop)
	testenv.Eventually(t, 20*time.Second, "SMTP server listening", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return s
}

func (s *smtpServer) stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Kill()
		s.cmd.Wait()
		s.cmd = nil
	}
}

// messages returns every stored message.
func (s *smtpServer) messages() []string {
	var out []string
	for _, sub := range []string{"new", "cur"} {
		files, _ := os.ReadDir(filepath.Join(s.dir, sub))
		for _, f := range files {
			b, err := os.ReadFile(filepath.Join(s.dir, sub, f.Name()))
			if err == nil {
				out = append(out, string(b))
			}
		}
	}
	return out
}

// TestIncidentEmailReachesEveryLASOAndITAdmin: one message per LASO and
// IT administrator, with the four facts the policy requires; with the
// SMTP server down, the message waits in the outbox and goes when it is
// back.
func TestIncidentEmailReachesEveryLASOAndITAdmin(t *testing.T) {
	addr := freePort(t)
	maildir := filepath.Join(t.TempDir(), "mail")
	smtpd := startSMTP(t, addr, maildir)
	e := testenv.New(t, "", server.WithSMTP("smtp://"+addr, "cordon@pd.example"), server.WithSweepInterval(200*time.Millisecond))
	adm, err := server.OpenAdmin(context.Background(), e.DataDir, e.DSN)
	if err != nil {
		t.Fatal(err)
	}
	for email, role := range map[string]string{"laso1@pd.example": "laso", "laso2@pd.example": "laso",
		"it@pd.example": "it-admin", "auditor@pd.example": "auditor", "officer@pd.example": "user"} {
		if err := adm.AddUser(context.Background(), email, role, "correct horse battery staple 42"); err != nil {
			t.Fatal(err)
		}
	}
	adm.Close()
	user := e.APIKey("user")
	dir := e.MustEnroll()
	a := e.StartAgent(dir)
	waitOnline(t, e, e.APIKey("laso"), a.DeviceID())

	report := func(location, description string) string {
		t.Helper()
		var inc struct {
			ID string `json:"id"`
		}
		if st := e.Do("POST", "/api/v1/incidents", user, map[string]any{"device_id": a.DeviceID(), "kind": "loss_of_control",
			"lock_state": "locked", "started_at": time.Now().UTC().Add(-5 * time.Minute), "location": location,
			"description": description}, &inc); st != 201 {
			t.Fatalf("report: %d", st)
		}
		return inc.ID
	}
	report("bus 14, eastbound", "left on the seat")
	testenv.Eventually(t, 20*time.Second, "three messages", func() bool { return len(smtpd.messages()) == 3 })
	to := map[string]bool{}
	for _, m := range smtpd.messages() {
		for _, want := range []string{"Device: ", a.DeviceID(), "Date and time: ", "Description: left on the seat", "Location: bus 14, eastbound", "Severity: low"} {
			if !strings.Contains(m, want) {
				t.Errorf("message lacks %q:\n%s", want, m)
			}
		}
		for _, rcpt := range []string{"laso1@pd.example", "laso2@pd.example", "it@pd.example", "auditor@pd.example", "officer@pd.example"} {
			if strings.Contains(m, "To: "+rcpt) {
				to[rcpt] = true
			}
		}
	}
	if len(to) != 3 || !to["laso1@pd.example"] || !to["laso2@pd.example"] || !to["it@pd.example"] {
		t.Fatalf("recipients %v; want every LASO and IT admin and nobody else", to)
	}

	// Down: the report still succeeds, the messages wait, and the
	// incident shows the failed attempts.
	smtpd.stop()
	id := report("courthouse lobby", "tablet missing from the bench")
	var inc struct {
		Notifications []struct {
			Recipient string  `json:"recipient"`
			SentAt    *string `json:"sent_at"`
			LastError string  `json:"last_error"`
		} `json:"notifications"`
	}
	testenv.Eventually(t, 20*time.Second, "failed sends on the incident", func() bool {
		e.Do("GET", "/api/v1/incidents/"+id, e.APIKey("laso"), nil, &inc)
		return len(inc.Notifications) == 3 && inc.Notifications[0].LastError != ""
	})
	// Back on the same address: the outbox delivers on its own.
	smtpd = startSMTP(t, addr, maildir)
	// Delivery is at least once: a connection cut after the server took a
	// message can bring a second copy, so what counts is that every
	// recipient has it.
	testenv.Eventually(t, 60*time.Second, "the held messages delivered to all three", func() bool {
		got := map[string]bool{}
		for _, m := range smtpd.messages() {
			if !strings.Contains(m, "Location: courthouse lobby") {
				continue
			}
			for _, rcpt := range []string{"laso1@pd.example", "laso2@pd.example", "it@pd.example"} {
				if strings.Contains(m, "To: "+rcpt) {
					got[rcpt] = true
				}
			}
		}
		return len(got) == 3
	})
}
