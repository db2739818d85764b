package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/cordon-mdm/cordon/internal/atomicfile"
	"github.com/cordon-mdm/cordon/internal/cryptarchive"
	"github.com/cordon-mdm/cordon/server/audit"
)

// RestoreRequest says what to restore where, and who asks.
type RestoreRequest struct {
	From       string
	DataDir    string // new, or an empty directory
	Passphrase string
	Actor      string
	// Record opens the restored data dir dir once (which migrates its
	// database to this build's schema), records e in it and closes it.
	// An error refuses the restore.
	Record         func(ctx context.Context, dir string, e audit.Entry) error
	ArchiveOptions []cryptarchive.Option
}

// Restored describes a restore.
type Restored struct {
	DataDir string
	SHA256  string // of the backup file
	Files   int
	Info    Info
}

// Restore decrypts and verifies the backup into a scratch directory
// beside DataDir, checks the manifest, opens and records the restore in
// the restored database, and only then renames the scratch directory to
// DataDir. A wrong passphrase, a tampered, cut or partial file, or a
// non-empty DataDir is refused, and nothing is written into DataDir.
// Every file is written 0600 and every directory 0700.
func Restore(ctx context.Context, req RestoreRequest) (Restored, error) {
	dst, err := filepath.Abs(req.DataDir)
	if err != nil {
		return Restored{}, err
	}
	if err := emptyOrAbsent(dst); err != nil {
		return Restored{}, err
	}
	parent := filepath.Dir(dst)
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return Restored{}, err
	}
	f, err := os.Open(req.From)
	if err != nil {
		return Restored{}, err
	}
	defer f.Close()
	scratch, err := os.MkdirTemp(parent, ".cordon-restore-*")
	if err != nil {
		return Restored{}, err
	}
	defer os.RemoveAll(scratch)
	sum := sha256.New()
	out := Restored{DataDir: dst}
	if out.Files, out.Info, err = extract(io.TeeReader(f, sum), req.Passphrase, scratch, req.ArchiveOptions); err != nil {
		return Restored{}, err
	}
	if _, err := io.Copy(sum, f); err != nil { // nothing is left; the sum is the whole file's
		return Restored{}, err
	}
	out.SHA256 = hex.EncodeToString(sum.Sum(nil))
	e := audit.Entry{Actor: req.Actor, Source: "local", Action: ActionRestored, Target: dst, Outcome: audit.Success,
		Details: map[string]string{"sha256": out.SHA256, "files": strconv.Itoa(out.Files), "backup_created_at": out.Info.CreatedAt.Format("2006-01-02T15:04:05Z07:00"),
			"backup_host": out.Info.Host, "database": out.Info.Database}}
	if err := req.Record(ctx, scratch, e); err != nil {
		return Restored{}, fmt.Errorf("the restored data dir does not open: %w", err)
	}
	// The data dir may exist, empty: os.Remove takes only an empty one,
	// and the rename then puts the restored one in its place.
	if err := emptyOrAbsent(dst); err != nil {
		return Restored{}, err
	}
	if err := os.Remove(dst); err != nil && !errors.Is(err, os.ErrNotExist) {
		return Restored{}, err
	}
	if err := os.Rename(scratch, dst); err != nil {
		return Restored{}, err
	}
	if err := os.Chmod(dst, 0o700); err != nil {
		return Restored{}, err
	}
	return out, atomicfile.SyncDir(parent)
}

func emptyOrAbsent(dir string) error {
	ents, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("data dir %s: %w", dir, err)
	case len(ents) > 0:
		return fmt.Errorf("data dir %s %w", dir, ErrNotEmpty)
	}
	return nil
}

// extract writes every member under dir and answers once the archive
// verified (Next's io.EOF).
func extract(r io.Reader, passphrase, dir string, opts []cryptarchive.Option) (int, Info, error) {
	ar, err := cryptarchive.NewReader(r, passphrase, opts...)
	if err != nil {
		return 0, Info{}, err
	}
	n, hasDB := 0, false
	for {
		e, err := ar.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, Info{}, err
		}
		if err := writeMember(dir, e.Name, ar); err != nil {
			return 0, Info{}, err
		}
		n++
		hasDB = hasDB || e.Name == DatabaseMember
	}
	var info Info
	if err := json.Unmarshal(ar.Info(), &info); err != nil || info.Format != 1 {
		return 0, Info{}, fmt.Errorf("%w (its description is not one this build reads)", cryptarchive.ErrCorrupt)
	}
	if info.Database == "sqlite" && !hasDB {
		return 0, Info{}, fmt.Errorf("%w (the SQLite database is missing from it)", cryptarchive.ErrCorrupt)
	}
	return n, info, nil
}

func writeMember(dir, name string, r io.Reader) error {
	rel := filepath.FromSlash(name)
	if !filepath.IsLocal(rel) {
		return fmt.Errorf("%w (member %q)", cryptarchive.ErrCorrupt, name)
	}
	p := filepath.Join(dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
