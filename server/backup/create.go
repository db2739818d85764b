package backup

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/cordon-mdm/cordon/internal/atomicfile"
	"github.com/cordon-mdm/cordon/internal/cryptarchive"
	"github.com/cordon-mdm/cordon/internal/version"
	"github.com/cordon-mdm/cordon/server/audit"
)

// Database is what a backup needs of the store (*store.Store).
type Database interface {
	Dialect() string
	// SQLiteFile is the live database file, left to Snapshot.
	SQLiteFile() string
	Snapshot(ctx context.Context, path string) error
}

// Request says what to back up and who asks.
type Request struct {
	DataDir    string
	To         string // the backup file; must not exist
	Passphrase string
	Actor      string // "local:<os user>"
	DB         Database
	Audit      Auditor
	// Archive options (tests: cheap key derivation).
	ArchiveOptions []cryptarchive.Option
}

// Result describes a backup made.
type Result struct {
	File     string
	SHA256   string // of the encrypted file
	Files    int
	Bytes    int64
	Database string // "sqlite" or "postgres" (not included)
}

// stableTries bounds how often a file that keeps changing is read again.
const stableTries = 20

// Create writes the backup. The file is written beside To, fsync'd, and
// renamed into place only after backup.created was recorded in the
// database the backup is of: when that entry cannot be written there is
// no backup. A failure is recorded too (outcome failure), if it can be.
func Create(ctx context.Context, req Request) (Result, error) {
	res, err := create(ctx, req)
	if err != nil && !errors.Is(err, errAuditFailed) {
		req.Audit.Record(ctx, audit.Entry{Actor: req.Actor, Source: "local", Action: ActionCreated, Target: req.To,
			Outcome: audit.Failure, Details: map[string]string{"error": err.Error()}})
	}
	return res, err
}

var errAuditFailed = errors.New("the audit entry could not be written: no backup was made")

func create(ctx context.Context, req Request) (Result, error) {
	to, err := filepath.Abs(req.To)
	if err != nil {
		return Result{}, err
	}
	data, err := filepath.Abs(req.DataDir)
	if err != nil {
		return Result{}, err
	}
	if rel, err := filepath.Rel(data, to); err == nil && filepath.IsLocal(rel) {
		return Result{}, fmt.Errorf("the backup file %s is inside the data dir: write it elsewhere", to)
	}
	if _, err := os.Lstat(to); err == nil {
		return Result{}, fmt.Errorf("%s exists already: a backup never overwrites a file", to)
	}
	if st, err := os.Stat(data); err != nil || !st.IsDir() {
		return Result{}, fmt.Errorf("data dir %s: not a directory (%v)", data, err)
	}
	dir := filepath.Dir(to)
	stage, err := os.MkdirTemp(dir, ".cordon-backup-stage-*")
	if err != nil {
		return Result{}, fmt.Errorf("staging beside the backup file: %w", err)
	}
	defer os.RemoveAll(stage)
	out, err := os.CreateTemp(dir, ".cordon-backup-*")
	if err != nil {
		return Result{}, err
	}
	defer os.Remove(out.Name())
	defer out.Close()

	res := Result{File: to, Database: req.DB.Dialect()}
	info, _ := json.Marshal(Info{Format: 1, CreatedAt: time.Now().UTC(), Host: hostname(), Version: version.Version, Database: res.Database})
	sum := sha256.New()
	bw := bufio.NewWriterSize(io.MultiWriter(out, sum), 256<<10)
	w, err := cryptarchive.NewWriter(bw, req.Passphrase, append([]cryptarchive.Option{cryptarchive.WithInfo(info)}, req.ArchiveOptions...)...)
	if err != nil {
		return Result{}, err
	}
	files, err := liveFiles(data, req.DB)
	if err != nil {
		return Result{}, err
	}
	s := stager{dir: stage, w: w}
	// 1. the files, 2. the database snapshot, 3. the CA's bbolt file:
	// the order the package comment explains.
	hasBolt := false
	for _, name := range files {
		if name == boltMember {
			hasBolt = true
			continue
		}
		if err := s.addLive(data, name); err != nil {
			return Result{}, err
		}
	}
	if res.Database == "sqlite" {
		snap := filepath.Join(stage, "snapshot.db")
		if err := req.DB.Snapshot(ctx, snap); err != nil {
			return Result{}, err
		}
		if err := s.addStaged(DatabaseMember, snap); err != nil {
			return Result{}, err
		}
	}
	if hasBolt {
		if err := s.addLive(data, boltMember); err != nil {
			return Result{}, err
		}
	}
	if err := w.Close(); err != nil {
		return Result{}, err
	}
	if err := bw.Flush(); err != nil {
		return Result{}, err
	}
	if err := out.Sync(); err != nil {
		return Result{}, err
	}
	st, err := out.Stat()
	if err != nil {
		return Result{}, err
	}
	if err := out.Close(); err != nil {
		return Result{}, err
	}
	res.SHA256, res.Files, res.Bytes = hex.EncodeToString(sum.Sum(nil)), len(w.Manifest()), st.Size()
	details := map[string]string{"sha256": res.SHA256, "files": strconv.Itoa(res.Files), "bytes": strconv.FormatInt(res.Bytes, 10),
		"database": res.Database}
	if res.Database != "sqlite" {
		details["database"] = res.Database + " (not included: pg_dump)"
	}
	if err := req.Audit.Record(ctx, audit.Entry{Actor: req.Actor, Source: "local", Action: ActionCreated, Target: to,
		Outcome: audit.Success, Details: details}); err != nil {
		return Result{}, fmt.Errorf("%w: %v", errAuditFailed, err)
	}
	if err := os.Rename(out.Name(), to); err != nil {
		return Result{}, err
	}
	return res, atomicfile.SyncDir(dir)
}

// liveFiles lists the data dir's regular files (slash paths, lexical
// order) that a backup copies: all but the live database and what
// skipped names.
func liveFiles(data string, db Database) ([]string, error) {
	live := map[string]bool{}
	if f := db.SQLiteFile(); f != "" {
		abs, err := filepath.Abs(f)
		if err != nil {
			return nil, err
		}
		for _, s := range []string{"", "-wal", "-shm", "-journal"} {
			live[abs+s] = true
		}
	}
	var names []string
	err := filepath.WalkDir(data, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() || live[p] {
			return nil // directories are implied; sockets, links and the live database stay out
		}
		rel, err := filepath.Rel(data, p)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		switch {
		case skipped(name):
		case name == databaseURL && db.Dialect() == "sqlite":
			// A restored data dir uses its own cordon.db (the snapshot),
			// not the path the old one named.
		case !cryptarchive.ValidName(name):
			return fmt.Errorf("data dir file %q has a name a backup cannot hold", name)
		default:
			names = append(names, name)
		}
		return nil
	})
	return names, err
}

// stager copies live files beside the backup file and adds them.
type stager struct {
	dir string
	w   *cryptarchive.Writer
	n   int
}

// addLive copies data/name until two reads agree, then adds the copy.
func (s *stager) addLive(data, name string) error {
	s.n++
	tmp := filepath.Join(s.dir, strconv.Itoa(s.n))
	src := filepath.Join(data, filepath.FromSlash(name))
	if err := stableCopy(src, tmp); err != nil {
		return fmt.Errorf("copy %s: %w", name, err)
	}
	if name == audit.CheckpointsFile {
		if err := cutToLastLine(tmp); err != nil {
			return err
		}
	}
	return s.addStaged(name, tmp)
}

func (s *stager) addStaged(name, tmp string) error {
	defer os.Remove(tmp)
	f, err := os.Open(tmp)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	return s.w.Add(name, st.Mode().Perm(), st.Size(), f)
}

// stableCopy copies src to dst, then reads src again: when both reads
// hash the same the copy is one state of the file, not a mix of two.
func stableCopy(src, dst string) error {
	for try := 0; ; try++ {
		first, err := copyHash(src, dst)
		if err != nil {
			return err
		}
		again, err := copyHash(src, "")
		if err != nil {
			return err
		}
		if first == again {
			return nil
		}
		if try == stableTries {
			return errors.New("it kept changing while it was read")
		}
		time.Sleep(time.Duration(try+1) * 20 * time.Millisecond)
	}
}

// copyHash hashes src, copying it to dst (0600) when dst is set.
func copyHash(src, dst string) ([32]byte, error) {
	var sum [32]byte
	in, err := os.Open(src)
	if err != nil {
		return sum, err
	}
	defer in.Close()
	h := sha256.New()
	w := io.Writer(h)
	var out *os.File
	if dst != "" {
		if out, err = os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600); err != nil {
			return sum, err
		}
		defer out.Close()
		w = io.MultiWriter(h, out)
	}
	if _, err := io.Copy(w, in); err != nil {
		return sum, err
	}
	if out != nil {
		if err := out.Close(); err != nil {
			return sum, err
		}
	}
	h.Sum(sum[:0])
	return sum, nil
}

// cutToLastLine drops a line the checkpoint file's writer had not
// finished when it was copied.
func cutToLastLine(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	i := bytes.LastIndexByte(b, '\n')
	if i == len(b)-1 {
		return nil
	}
	return os.Truncate(path, int64(i+1))
}

func hostname() string {
	h, _ := os.Hostname()
	return h
}
