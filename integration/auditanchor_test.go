package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/internal/testenv"
	"github.com/cordon-mdm/cordon/server"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/store"
)

type verifyJSON struct {
	OK         bool   `json:"ok"`
	Entries    int64  `json:"entries"`
	Broken     *int64 `json:"broken_seq"`
	Reason     string `json:"reason"`
	FirstSeq   int64  `json:"first_seq"`
	Checkpoint *struct {
		Seq int64 `json:"seq"`
	} `json:"checkpoint"`
}

// rewriteAuditRow is the attack AU-9 is about: a database writer alters
// entry seq with a real SQL UPDATE, then recomputes the hash of it and of
// every later entry, and the head, so the chain is consistent again.
func rewriteAuditRow(t *testing.T, st *store.Store, seq int64, target string) {
	t.Helper()
	db := st.DB()
	if err := db.Exec("UPDATE audit_entries SET target = ? WHERE seq = ?", target, seq).Error; err != nil {
		t.Fatal(err)
	}
	var rows []store.AuditEntry
	if err := db.Where("seq >= ?", seq).Order("seq").Find(&rows).Error; err != nil {
		t.Fatal(err)
	}
	var prev string
	if err := db.Raw("SELECT hash FROM audit_entries WHERE seq = ?", seq-1).Scan(&prev).Error; err != nil {
		t.Fatal(err)
	}
	for i := range rows {
		rows[i].PrevHash = prev
		rows[i].Hash = audit.Hash(&rows[i])
		prev = rows[i].Hash
		if err := db.Exec("UPDATE audit_entries SET prev_hash = ?, hash = ? WHERE seq = ?", rows[i].PrevHash, rows[i].Hash, rows[i].Seq).Error; err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Exec("UPDATE audit_heads SET hash = ? WHERE id = 1", prev).Error; err != nil {
		t.Fatal(err)
	}
}

// TestAuditCheckpointsCatchARecomputedChain (acceptance 2): after a row
// is rewritten and the chain recomputed, the chain alone still verifies,
// but `audit verify` (API and host command) reports the break against
// the newest signed checkpoint. An export verifies offline with the
// public key; the same export with one entry altered does not.
func TestAuditCheckpointsCatchARecomputedChain(t *testing.T) {
	srvBin, ctlBin := buildBinary(t, "cordon-server", ""), buildBinary(t, "cordonctl", "")
	forEachDatabase(t, func(t *testing.T, dsn func(testing.TB) string) {
		e := testenv.New(t, dsn(t))
		ctx := context.Background()
		auditor := e.APIKey("auditor")
		for i := range 6 {
			if err := e.Server.Audit.Record(ctx, audit.Entry{Actor: "local:t", Source: "local", Action: "test.event",
				Target: fmt.Sprint("t", i), Outcome: audit.Success, Details: map[string]string{"i": fmt.Sprint(i)}}); err != nil {
				t.Fatal(err)
			}
		}
		host := func(args ...string) (string, error) {
			out, err := exec.Command(srvBin, append(args, "--data", e.DataDir)...).CombinedOutput()
			return string(out), err
		}
		// On demand, from the host: the checkpoint is in the file and in
		// the database.
		out, err := host("audit", "checkpoint")
		if err != nil || !strings.Contains(out, "checkpoint of entry") {
			t.Fatalf("audit checkpoint: %v\n%s", err, out)
		}
		var cps struct {
			PublicKey   string `json:"public_key"`
			Checkpoints []struct {
				Seq int64 `json:"seq"`
			} `json:"checkpoints"`
		}
		if st := e.Do("GET", "/api/v1/audit/checkpoints", auditor, nil, &cps); st != 200 || len(cps.Checkpoints) < 2 {
			t.Fatalf("checkpoints: %d %+v", st, cps)
		}
		newest := cps.Checkpoints[len(cps.Checkpoints)-1].Seq
		fi, err := os.Stat(filepath.Join(e.DataDir, audit.CheckpointsFile))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("checkpoint file: %v %v", fi, err)
		}
		if fi, err := os.Stat(filepath.Join(e.DataDir, audit.CheckpointKeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("checkpoint key: %v %v", fi, err)
		}
		keyPEM, err := host("audit", "key")
		if err != nil || keyPEM != cps.PublicKey {
			t.Fatalf("audit key from the host: %v\n%s\nAPI: %s", err, keyPEM, cps.PublicKey)
		}
		pub := filepath.Join(t.TempDir(), "checkpoint.pub")
		os.WriteFile(pub, []byte(keyPEM), 0o644)

		// Export, then verify offline (no server settings in the
		// environment: the auditor has only the file and the key).
		exp, err := cordonctlCmd(ctlBin, e, auditor, "audit", "export").Output()
		if err != nil {
			t.Fatalf("export: %v", err)
		}
		if !strings.Contains(string(exp), `{"checkpoint":`) {
			t.Fatalf("the export holds no checkpoint:\n%s", exp)
		}
		dir := t.TempDir()
		good, bad := filepath.Join(dir, "audit.jsonl"), filepath.Join(dir, "altered.jsonl")
		os.WriteFile(good, exp, 0o600)
		os.WriteFile(bad, []byte(strings.Replace(string(exp), `"target":"t2"`, `"target":"t9"`, 1)), 0o600)
		offline := func(file string) (string, int) {
			cmd := exec.Command(ctlBin, "audit", "verify", "--file", file, "--key", pub)
			cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
			out, err := cmd.Output()
			if ee, ok := err.(*exec.ExitError); ok {
				return string(out), ee.ExitCode()
			}
			return string(out), 0
		}
		if out, code := offline(good); code != 0 || !strings.Contains(out, `"ok": true`) {
			t.Fatalf("offline verify of the export: %d\n%s", code, out)
		}
		if out, code := offline(bad); code != 6 || !strings.Contains(out, "altered") {
			t.Fatalf("offline verify of an altered export: %d\n%s", code, out)
		}

		// The attack: entry 3 (target t?) rewritten, every later hash and
		// the head recomputed.
		var v verifyJSON
		if e.Do("GET", "/api/v1/audit/verify", auditor, nil, &v); !v.OK || v.Checkpoint == nil {
			t.Fatalf("before: %+v", v)
		}
		var seq int64
		e.Server.Store.DB().Raw("SELECT seq FROM audit_entries WHERE target = ?", "t2").Scan(&seq)
		rewriteAuditRow(t, e.Server.Store, seq, "nobody")
		if res, err := audit.New(e.Server.Store, nil).Verify(ctx); err != nil || !res.OK {
			t.Fatalf("the recomputed chain should pass a check of the chain alone (that is the attack): %+v %v", res, err)
		}
		v = verifyJSON{}
		e.Do("GET", "/api/v1/audit/verify", auditor, nil, &v)
		if v.OK || v.Broken == nil || *v.Broken != newest || !strings.Contains(v.Reason, "checkpoint") {
			t.Fatalf("API verify after the rewrite, want broken at the newest checkpoint (entry %d): %+v", newest, v)
		}
		out, err = host("audit", "verify")
		if err == nil || !strings.Contains(out, fmt.Sprintf("BROKEN at entry %d", newest)) || !strings.Contains(out, "checkpoint") {
			t.Fatalf("host audit verify after the rewrite: %v\n%s", err, out)
		}
	})
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// TestAuditRetentionPrunesOnlyPastTheSetting (acceptance 3): with
// entries spread over more than a year, pruning keeps every entry
// younger than the retention, removes older ones only up to a signed
// checkpoint, audits itself, and the chain still verifies.
func TestAuditRetentionPrunesOnlyPastTheSetting(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn func(testing.TB) string) {
		now := time.Now().UTC().Truncate(time.Microsecond)
		clock := &fakeClock{t: now.Add(-500 * 24 * time.Hour)}
		e := testenv.New(t, dsn(t), server.WithAuditClock(clock.Now))
		ctx := context.Background()
		for day := 0; day <= 500; day += 10 {
			clock.Set(now.Add(time.Duration(day-500) * 24 * time.Hour))
			for i := range 3 {
				if err := e.Server.Audit.Record(ctx, audit.Entry{Actor: "local:t", Source: "local", Action: "test.event",
					Target: fmt.Sprintf("day%d.%d", day, i), Outcome: audit.Success}); err != nil {
					t.Fatal(err)
				}
			}
			if day%30 == 0 {
				if _, err := e.Server.AuditAnchor.Checkpoint(ctx); err != nil {
					t.Fatal(err)
				}
			}
		}
		clock.Set(now)
		cutoff := now.Add(-audit.DefaultRetention)
		var before []store.AuditEntry
		e.Server.Store.DB().Order("seq").Find(&before)
		young := map[int64]bool{}
		for _, r := range before {
			if !r.Time.Before(cutoff) {
				young[r.Seq] = true
			}
		}
		if _, err := e.Server.AuditAnchor.Prune(ctx, 4000*time.Hour); err == nil {
			t.Fatal("a prune under the one-year floor was allowed")
		}
		res, err := e.Server.AuditAnchor.Prune(ctx, audit.DefaultRetention)
		if err != nil || res.Removed == 0 {
			t.Fatalf("prune: %+v %v", res, err)
		}
		var after []store.AuditEntry
		e.Server.Store.DB().Order("seq").Find(&after)
		left := map[int64]bool{}
		for _, r := range after {
			left[r.Seq] = true
			if r.Seq <= res.ThroughSeq {
				t.Errorf("entry %d is at or before the prune point %d", r.Seq, res.ThroughSeq)
			}
		}
		for seq := range young {
			if !left[seq] {
				t.Errorf("entry %d, younger than the retention, was removed", seq)
			}
		}
		if int64(len(before))+1-int64(len(after)) != res.Removed {
			t.Errorf("removed %d, but %d rows before and %d after (one audit.pruned added)", res.Removed, len(before), len(after))
		}
		// Old entries past the last checkpoint before the cutoff stay:
		// pruning stops at a checkpoint, never at the cutoff itself.
		auditor := e.APIKey("auditor")
		var v verifyJSON
		if e.Do("GET", "/api/v1/audit/verify", auditor, nil, &v); !v.OK || v.FirstSeq != res.ThroughSeq+1 {
			t.Fatalf("verify after pruning: %+v", v)
		}
		pruned := e.Audit(audit.Pruned)
		if len(pruned) != 1 || pruned[0].Details["removed"] != fmt.Sprint(res.Removed) || pruned[0].Details["through_seq"] != fmt.Sprint(res.ThroughSeq) {
			t.Fatalf("audit.pruned: %+v", pruned)
		}
		// A second prune finds nothing more to remove.
		if again, err := e.Server.AuditAnchor.Prune(ctx, audit.DefaultRetention); err != nil || again.Removed != 0 {
			t.Fatalf("second prune: %+v %v", again, err)
		}
		var ok struct {
			OK bool `json:"ok"`
		}
		if e.Do("GET", "/api/v1/audit/verify", auditor, nil, &ok); !ok.OK {
			t.Fatal("the chain does not verify after the second prune")
		}
		b, _ := json.Marshal(v)
		t.Logf("after pruning: %s", b)
		// A rewritten chain is never pruned: that would destroy the evidence.
		rewriteAuditRow(t, e.Server.Store, res.ThroughSeq+5, "nobody")
		if _, err := e.Server.AuditAnchor.Prune(ctx, audit.DefaultRetention); err == nil || !strings.Contains(err.Error(), "nothing pruned") {
			t.Fatalf("prune of a rewritten chain: %v", err)
		}
	})
}

// TestServerRefusesARetentionUnderAYear (acceptance 3): server.New stops
// on a retention below the floor, before touching the data dir.
func TestServerRefusesARetentionUnderAYear(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	_, err := server.New(context.Background(), server.WithDataDir(dir), server.WithAuditRetention(8759*time.Hour))
	if err == nil || !strings.Contains(err.Error(), "one year") {
		t.Fatalf("New: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatal("a refused start made the data dir")
	}
}
