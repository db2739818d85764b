package backup_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cordon-mdm/cordon/internal/cryptarchive"
	"github.com/cordon-mdm/cordon/internal/testbed"
	"github.com/cordon-mdm/cordon/pki"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/backup"
	"github.com/cordon-mdm/cordon/server/store"
)

const pass = "a test passphrase, long enough"

var cheap = []cryptarchive.Option{cryptarchive.WithIterations(1000), cryptarchive.WithChunkSize(4096)}

// racingDB is the store with serve's work interleaved around the
// snapshot, as it happens when serve runs beside the backup: entries and
// a signed checkpoint just before it, and after it (before the CA's file
// is copied) entries, a checkpoint and a certificate the CA signs.
type racingDB struct {
	*store.Store
	before, after func()
}

func (r racingDB) Snapshot(ctx context.Context, path string) error {
	r.before()
	err := r.Store.Snapshot(ctx, path)
	r.after()
	return err
}

func record(t *testing.T, l *audit.Log, n int, what string) {
	t.Helper()
	for i := range n {
		if err := l.Record(t.Context(), audit.Entry{Actor: "test", Source: "local", Action: what, Target: fmt.Sprint(i), Outcome: audit.Success}); err != nil {
			t.Fatal(err)
		}
	}
}

func checkpoint(t *testing.T, a *audit.Anchor) {
	t.Helper()
	if _, err := a.Checkpoint(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// openRestored opens a restored data dir as the admin commands do and
// verifies its trail against its checkpoints.
func openRestored(ctx context.Context, dir string) (*store.Store, *audit.Log, error) {
	st, err := store.Open(ctx, dir, "")
	if err != nil {
		return nil, nil, err
	}
	l := audit.New(st, nil)
	if _, err := audit.NewAnchor(l, st, dir, false); err != nil {
		st.Close()
		return nil, nil, err
	}
	return st, l, nil
}

func TestCheckpointsAndCAStayConsistentWithTheSnapshot(t *testing.T) {
	dir, st, ca := testbed.StoreAndCA(t)
	l := audit.New(st, nil)
	anchor, err := audit.NewAnchor(l, st, dir, true)
	if err != nil {
		t.Fatal(err)
	}
	record(t, l, 5, "early")
	checkpoint(t, anchor)
	var lateSerial string
	db := racingDB{Store: st,
		before: func() { record(t, l, 3, "between-files-and-snapshot"); checkpoint(t, anchor) },
		after: func() {
			record(t, l, 3, "after-snapshot")
			checkpoint(t, anchor)
			crt, _ := testbed.DeviceCert(t, ca, "late-device")
			lateSerial = crt.SerialNumber.String()
		}}
	// Leftovers a backup must not carry: locks, a half-written atomic
	// file, a socket; and a directory a later feature adds, which it must.
	for _, f := range []string{"serve.lock", ".tmp-ticket-keys.json-123", "agent-releases/1.2.3/cordon-agent"} {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o700)
		if err := os.WriteFile(filepath.Join(dir, f), []byte(f), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	sock, err := net.Listen("unix", filepath.Join(dir, "admin.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()

	to := filepath.Join(t.TempDir(), "b.cbk")
	res, err := backup.Create(t.Context(), backup.Request{DataDir: dir, To: to, Passphrase: pass, Actor: "local:test", DB: db, Audit: l, ArchiveOptions: cheap})
	if err != nil {
		t.Fatal(err)
	}
	if res.Database != "sqlite" || len(res.SHA256) != 64 {
		t.Fatalf("result %+v", res)
	}
	names := members(t, to)
	for _, want := range []string{"cordon.db", "ca/authority.db", "ca/root.key", "ca/intermediate.key", "audit-checkpoint.key",
		"audit-checkpoints.jsonl", "command-signing.key", "agent-releases/1.2.3/cordon-agent"} {
		if want == "command-signing.key" {
			continue // serve makes it; this data dir never served
		}
		if !slices.Contains(names, want) {
			t.Errorf("backup lacks %s (has %v)", want, names)
		}
	}
	for _, n := range names {
		if strings.HasSuffix(n, ".lock") || strings.Contains(n, ".tmp-") || strings.HasSuffix(n, "-wal") || strings.HasSuffix(n, "-shm") || n == "admin.sock" {
			t.Errorf("backup holds %s", n)
		}
	}

	restored := filepath.Join(t.TempDir(), "restored")
	var verified audit.VerifyResult
	_, err = backup.Restore(t.Context(), backup.RestoreRequest{From: to, DataDir: restored, Passphrase: pass, Actor: "local:test",
		ArchiveOptions: cheap, Record: func(ctx context.Context, d string, e audit.Entry) error {
			rst, rl, err := openRestored(ctx, d)
			if err != nil {
				return err
			}
			defer rst.Close()
			if verified, err = rl.Verify(ctx); err != nil {
				return err
			}
			return rl.Record(ctx, e)
		}})
	if err != nil {
		t.Fatal(err)
	}
	// The checkpoint signed between the file copy and the snapshot is a
	// row of the snapshot; the one after it is in neither: the trail
	// verifies against every checkpoint the restored dir holds.
	if !verified.OK || verified.Checkpoints < 2 {
		t.Fatalf("restored trail: %+v", verified)
	}
	rst, rl, err := openRestored(t.Context(), restored)
	if err != nil {
		t.Fatal(err)
	}
	defer rst.Close()
	if res, err := rl.Verify(t.Context()); err != nil || !res.OK {
		t.Fatalf("restored trail after backup.restored: %+v %v", res, err)
	}
	n := func(action string) (c int64) {
		rst.DB().Model(&store.AuditEntry{}).Where("action = ?", action).Count(&c)
		return c
	}
	if n("between-files-and-snapshot") != 3 || n("after-snapshot") != 0 || n(backup.ActionRestored) != 1 {
		t.Fatalf("restored entries: %d between, %d after, %d restored", n("between-files-and-snapshot"), n("after-snapshot"), n(backup.ActionRestored))
	}
	// The CA's file is newer than the snapshot: it knows the certificate
	// signed after it, so it can still revoke it.
	for _, k := range []string{"ca/root.key", "ca/intermediate.key", audit.CheckpointKeyFile, "cordon.db"} {
		if fi, err := os.Stat(filepath.Join(restored, k)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", k, fi, err)
		}
	}
	rca, err := pki.Open(restored)
	if err != nil {
		t.Fatal(err)
	}
	defer rca.Close()
	if err := rca.Revoke(t.Context(), lateSerial, "test"); err != nil {
		t.Fatalf("restored CA cannot revoke the certificate signed after the snapshot: %v", err)
	}
}

func members(t *testing.T, file string) []string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := cryptarchive.NewReader(f, pass)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for {
		e, err := r.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatal(err)
			}
			return names
		}
		names = append(names, e.Name)
	}
}

// failingAudit cannot write: the database is read-only, the disk full.
type failingAudit struct{ entries []audit.Entry }

func (f *failingAudit) Record(_ context.Context, e audit.Entry) error {
	f.entries = append(f.entries, e)
	return errors.New("disk full")
}

func TestNoAuditEntryNoBackup(t *testing.T) {
	dir, st, _ := testbed.StoreAndCA(t)
	out := t.TempDir()
	to := filepath.Join(out, "b.cbk")
	aud := &failingAudit{}
	_, err := backup.Create(t.Context(), backup.Request{DataDir: dir, To: to, Passphrase: pass, Actor: "local:test", DB: st, Audit: aud, ArchiveOptions: cheap})
	if err == nil || !strings.Contains(err.Error(), "no backup was made") {
		t.Fatalf("backup without its audit entry: %v", err)
	}
	if left, _ := os.ReadDir(out); len(left) != 0 {
		t.Fatalf("left behind: %v", left)
	}
	if len(aud.entries) != 1 || aud.entries[0].Action != backup.ActionCreated || aud.entries[0].Details["sha256"] == "" {
		t.Fatalf("entries tried: %+v", aud.entries)
	}
}

func TestBackupRefusals(t *testing.T) {
	dir, st, _ := testbed.StoreAndCA(t)
	l := audit.New(st, nil)
	req := backup.Request{DataDir: dir, Passphrase: pass, Actor: "local:test", DB: st, Audit: l, ArchiveOptions: cheap}
	req.To = filepath.Join(dir, "inside.cbk")
	if _, err := backup.Create(t.Context(), req); err == nil || !strings.Contains(err.Error(), "inside the data dir") {
		t.Fatalf("backup into the data dir: %v", err)
	}
	req.To = filepath.Join(t.TempDir(), "exists")
	os.WriteFile(req.To, []byte("x"), 0o600)
	if _, err := backup.Create(t.Context(), req); err == nil || !strings.Contains(err.Error(), "exists already") {
		t.Fatalf("backup over a file: %v", err)
	}
	// Refusals are audited as failures.
	var failed int64
	st.DB().Model(&store.AuditEntry{}).Where("action = ? AND outcome = ?", backup.ActionCreated, audit.Failure).Count(&failed)
	if failed != 2 {
		t.Fatalf("%d failed backups audited, want 2", failed)
	}
}

func TestRestoreRefusals(t *testing.T) {
	dir, st, _ := testbed.StoreAndCA(t)
	l := audit.New(st, nil)
	to := filepath.Join(t.TempDir(), "b.cbk")
	if _, err := backup.Create(t.Context(), backup.Request{DataDir: dir, To: to, Passphrase: pass, Actor: "local:test", DB: st, Audit: l, ArchiveOptions: cheap}); err != nil {
		t.Fatal(err)
	}
	good, _ := os.ReadFile(to)
	recorded := 0
	restore := func(from, into, passphrase string) error {
		_, err := backup.Restore(t.Context(), backup.RestoreRequest{From: from, DataDir: into, Passphrase: passphrase, Actor: "local:test",
			ArchiveOptions: cheap, Record: func(context.Context, string, audit.Entry) error { recorded++; return nil }})
		return err
	}
	parent := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(t.TempDir(), name)
		os.WriteFile(p, b, 0o600)
		return p
	}
	flipped := slices.Clone(good)
	flipped[len(flipped)/2] ^= 0x80
	cases := map[string]struct {
		from, pass string
		want       error
	}{
		"flipped":   {write("flipped", flipped), pass, cryptarchive.ErrCorrupt},
		"truncated": {write("cut", good[:len(good)-4096-28]), pass, cryptarchive.ErrCorrupt},
		"partial":   {write("partial", good[:len(good)/3]), pass, cryptarchive.ErrCorrupt},
		"wrongpass": {to, "another passphrase, long enough", cryptarchive.ErrPassphrase},
	}
	for name, c := range cases {
		into := filepath.Join(parent, name)
		if err := restore(c.from, into, c.pass); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
	if left, _ := os.ReadDir(parent); len(left) != 0 || recorded != 0 {
		t.Fatalf("refused restores left %v, recorded %d", left, recorded)
	}
	// A data dir with anything in it is refused; an empty one is used.
	full := filepath.Join(parent, "full")
	os.MkdirAll(full, 0o700)
	os.WriteFile(filepath.Join(full, "x"), nil, 0o600)
	if err := restore(to, full, pass); !errors.Is(err, backup.ErrNotEmpty) {
		t.Fatalf("non-empty dir: %v", err)
	}
	empty := filepath.Join(parent, "empty")
	os.MkdirAll(empty, 0o755)
	if err := restore(to, empty, pass); err != nil || recorded != 1 {
		t.Fatalf("empty dir: %v (recorded %d)", err, recorded)
	}
	if fi, _ := os.Stat(empty); fi.Mode().Perm() != 0o700 {
		t.Fatalf("restored dir mode %v", fi.Mode().Perm())
	}
	// A Record that fails (the database does not open) refuses it too.
	_, err := backup.Restore(t.Context(), backup.RestoreRequest{From: to, DataDir: filepath.Join(parent, "noopen"), Passphrase: pass,
		ArchiveOptions: cheap, Record: func(context.Context, string, audit.Entry) error { return errors.New("migration failed") }})
	if err == nil {
		t.Fatal("a restore whose database does not open went through")
	}
	if _, err := os.Stat(filepath.Join(parent, "noopen")); !os.IsNotExist(err) {
		t.Fatalf("left %v", err)
	}
}
