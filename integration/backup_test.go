package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/enroll"
	"github.com/cordon-mdm/cordon/internal/testenv"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/backup"
	"github.com/cordon-mdm/cordon/server/store"
)

// simFleet is a cordon-sim run process and its latest stats line.
type simFleet struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	last struct{ Connected, Connects, Acked int64 }
}

func (f *simFleet) stats() (connected, connects, acked int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last.Connected, f.last.Connects, f.last.Acked
}

func runSim(t *testing.T, sim string, args ...string) *simFleet {
	t.Helper()
	f := &simFleet{cmd: exec.Command(sim, args...)}
	out, err := f.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	f.cmd.Stderr = os.Stderr
	if err := f.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var line struct {
				Connected, Connects, Acked *int64
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Connected != nil && line.Connects != nil {
				f.mu.Lock()
				f.last.Connected, f.last.Connects, f.last.Acked = *line.Connected, *line.Connects, *line.Acked
				f.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { f.cmd.Process.Signal(syscall.SIGTERM); f.cmd.Wait() })
	return f
}

// deviceIDs are the enrolled devices of a data dir's database.
func deviceIDs(t *testing.T, data string) []string {
	t.Helper()
	st, err := store.Open(context.Background(), data, "")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var ids []string
	if err := st.DB().Model(&store.Device{}).Order("id").Pluck("id", &ids).Error; err != nil {
		t.Fatal(err)
	}
	return ids
}

// connectedSince are the devices with a device.connected entry after seq.
func connectedSince(t *testing.T, data string, seq int64) []string {
	t.Helper()
	st, err := store.Open(context.Background(), data, "")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var targets []string
	if err := st.DB().Model(&store.AuditEntry{}).Where("action = ? AND seq > ?", audit.DeviceConnected, seq).
		Distinct("target").Pluck("target", &targets).Error; err != nil {
		t.Fatal(err)
	}
	ids := make([]string, 0, len(targets))
	for _, tg := range targets {
		ids = append(ids, strings.TrimPrefix(tg, "device:"))
	}
	slices.Sort(ids)
	return ids
}

func auditEntry(t *testing.T, data, action string) store.AuditEntry {
	t.Helper()
	st, err := store.Open(context.Background(), data, "")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var e store.AuditEntry
	if err := st.DB().Where("action = ?", action).Order("seq DESC").First(&e).Error; err != nil {
		t.Fatalf("no %s entry in %s: %v", action, data, err)
	}
	return e
}

// TestBackupWhileAgentsReportAndRestore is issue 20's fourth acceptance
// test: a backup taken with the real binary while 50 agents report is
// restored into a fresh data dir; a server started on it at the same
// addresses gets the same agents back without a new enrollment, and its
// audit trail verifies; a backup with one byte changed is refused and
// leaves its target absent.
func TestBackupWhileAgentsReportAndRestore(t *testing.T) {
	const agents = 50
	bin := buildServer(t, "")
	sim := buildBinary(t, "cordon-sim", "")
	srv := startServer(t, bin, "")
	token := runAdmin(t, bin, "token", "create", "--data", srv.data, "--uses", strconv.Itoa(agents), "--ttl", "1h")
	fp := runAdmin(t, bin, "ca", "fingerprint", "--data", srv.data)
	simState := t.TempDir()
	runAdmin(t, sim, "enroll", "--server", "https://"+srv.listen, "--token", token, "--ca-fingerprint", fp,
		"--state", simState, "--count", strconv.Itoa(agents))
	fleet := runSim(t, sim, "run", "--state", simState, "--count", strconv.Itoa(agents), "--duration", "10m",
		"--poll", "1s", "--report", "2s", "--lock-every", "3s", "--backoff-base", "200ms", "--backoff-max", "1s", "--stats", "500ms")
	testenv.Eventually(t, 60*time.Second, "50 agents online", func() bool { c, _, _ := fleet.stats(); return c == agents })
	devices := deviceIDs(t, srv.data)
	if len(devices) != agents {
		t.Fatalf("%d devices enrolled, want %d", len(devices), agents)
	}

	// The backup, taken while they report: the reports acknowledged go on
	// growing across it.
	pass := filepath.Join(t.TempDir(), "passphrase")
	if err := os.WriteFile(pass, []byte("a passphrase of the test, long enough\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, ackedBefore := fleet.stats()
	file := filepath.Join(t.TempDir(), "cordon.backup")
	out := runAdmin(t, bin, "backup", "--data", srv.data, "--to", file, "--passphrase-file", pass)
	t.Log(out)
	testenv.Eventually(t, 30*time.Second, "reports acknowledged after the backup", func() bool {
		_, _, a := fleet.stats()
		return a > ackedBefore+agents
	})
	created := auditEntry(t, srv.data, backup.ActionCreated)
	if created.Outcome != audit.Success || !strings.Contains(created.Details, "sha256") || !strings.HasPrefix(created.Actor, "local:") {
		t.Fatalf("backup.created entry: %+v", created)
	}
	enrolled := auditCount(t, srv.data, "", enroll.ActionEnrolled)

	// A byte changed in the middle is refused, and nothing is written.
	tampered := filepath.Join(t.TempDir(), "tampered.backup")
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x01
	if err := os.WriteFile(tampered, b, 0o600); err != nil {
		t.Fatal(err)
	}
	refusedDir := filepath.Join(t.TempDir(), "refused")
	cmd := exec.Command(bin, "restore", "--from", tampered, "--data", refusedDir, "--passphrase-file", pass)
	msg, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(msg), "altered, truncated or damaged") {
		t.Fatalf("tampered backup: %v\n%s", err, msg)
	}
	t.Logf("tampered backup refused: %s", strings.TrimSpace(string(msg)))
	if _, err := os.Stat(refusedDir); !os.IsNotExist(err) {
		t.Fatalf("the refused restore left %s behind (%v)", refusedDir, err)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(refusedDir), ".cordon-restore-*")); len(left) > 0 {
		t.Fatalf("scratch left behind: %v", left)
	}

	// Stop the server; restore into a fresh data dir; serve it at the
	// same addresses.
	srv.signal(syscall.SIGTERM)
	srv.cmd.Wait()
	restored := filepath.Join(t.TempDir(), "restored")
	t.Log(runAdmin(t, bin, "restore", "--from", file, "--data", restored, "--passphrase-file", pass))
	for _, key := range []string{"ca/root.key", "ca/intermediate.key", "command-signing.key", audit.CheckpointKeyFile} {
		if fi, err := os.Stat(filepath.Join(restored, key)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("restored %s: %v %v", key, fi, err)
		}
	}
	restoredEntry := auditEntry(t, restored, backup.ActionRestored)
	if restoredEntry.Outcome != audit.Success || !strings.Contains(restoredEntry.Details, "\"audit_verified\":\"true\"") {
		t.Fatalf("backup.restored entry: %+v", restoredEntry)
	}
	_, connectsBefore, _ := fleet.stats()
	srv.data = restored
	srv.start()

	// The same agents come back on their old identities: every enrolled
	// device connects to the restored server, and no enrollment happens.
	testenv.Eventually(t, 90*time.Second, "every agent reconnected to the restored server", func() bool {
		c, n, _ := fleet.stats()
		return c == agents && n >= connectsBefore+agents && len(connectedSince(t, restored, restoredEntry.Seq)) == agents
	})
	if got := connectedSince(t, restored, restoredEntry.Seq); !slices.Equal(got, devices) {
		t.Fatalf("devices reconnected %v, want %v", got, devices)
	}
	if got := deviceIDs(t, restored); !slices.Equal(got, devices) {
		t.Fatalf("devices after restore %v, want %v", got, devices)
	}
	if n := auditCount(t, restored, "", enroll.ActionEnrolled); n != enrolled {
		t.Fatalf("%d enrollments after the restore, %d before it", n, enrolled)
	}
	verify := runAdmin(t, bin, "audit", "verify", "--data", restored)
	if !strings.HasPrefix(verify, "audit log intact") {
		t.Fatalf("audit verify on the restored data dir: %s", verify)
	}
	t.Log(verify)
}
