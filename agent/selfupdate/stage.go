package selfupdate

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"

	"github.com/cordon-mdm/cordon/internal/atomicfile"
)

// Suffixes of the files beside the executable.
const (
	NewSuffix  = ".new"  // the downloaded build, before it replaces the executable
	PrevSuffix = ".prev" // the build that ran before the update
)

// Errors Stage answers; each ends the command failed with the agent
// still on its current binary.
var (
	ErrPlatform = errors.New("the build is not for this platform")
	ErrHash     = errors.New("the build's SHA-256 does not match the signed command")
	ErrSize     = errors.New("the build's size does not match the signed command")
)

// Want is what a build must be: its platform, size and SHA-256 (hex),
// all from the signed command.
type Want struct {
	OS, Arch string
	Size     int64
	SHA256   string
}

// CheckPlatform refuses a build for another GOOS/GOARCH than this one.
func (w Want) CheckPlatform() error {
	if w.OS != runtime.GOOS || w.Arch != runtime.GOARCH {
		return fmt.Errorf("%w: it is for %s/%s, this agent runs on %s/%s", ErrPlatform, w.OS, w.Arch, runtime.GOOS, runtime.GOARCH)
	}
	return nil
}

// Stage writes the build read from body beside exe, checks it against
// want, keeps the running build as exe.prev and renames the new one
// over exe. Nothing is replaced unless every check passed; a failed
// stage leaves exe as it was.
func Stage(exe string, body io.Reader, want Want) error {
	if err := want.CheckPlatform(); err != nil {
		return err
	}
	dir := filepath.Dir(exe)
	f, err := os.CreateTemp(dir, "."+filepath.Base(exe)+NewSuffix+"-*")
	if err != nil {
		return fmt.Errorf("write beside the executable: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op once renamed
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(body, want.Size+1))
	if err != nil {
		f.Close()
		return fmt.Errorf("download: %w", err)
	}
	if n != want.Size {
		f.Close()
		return fmt.Errorf("%w: got %d bytes, want %d", ErrSize, n, want.Size)
	}
	got := hex.EncodeToString(h.Sum(nil))
	if subtle.ConstantTimeCompare([]byte(got), []byte(want.SHA256)) != 1 {
		f.Close()
		return fmt.Errorf("%w: got %s, want %s", ErrHash, got, want.SHA256)
	}
	if err := f.Chmod(0o755); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := keepPrevious(exe); err != nil {
		return fmt.Errorf("keep the running build as %s: %w", PrevSuffix, err)
	}
	if err := swap(tmp, exe); err != nil {
		return fmt.Errorf("replace the executable: %w", err)
	}
	atomicfile.SyncDir(dir)
	return nil
}

// Restore puts exe.prev back as exe, atomically (a copy renamed over
// it): the rollback. exe.prev stays, the copy the watchdog runs from.
func Restore(exe string) error {
	tmp, err := copyBeside(exe+PrevSuffix, exe)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := swap(tmp, exe); err != nil {
		return err
	}
	atomicfile.SyncDir(filepath.Dir(exe))
	return nil
}

// copyBeside copies src to a synced temporary file beside dst, with
// src's mode, and returns its name.
func copyBeside(src, dst string) (string, error) {
	in, err := os.Open(src)
	if err != nil {
		return "", err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return "", err
	}
	out, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+"-*")
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		os.Remove(out.Name())
		return "", err
	}
	if err := out.Chmod(fi.Mode().Perm()); err != nil {
		out.Close()
		os.Remove(out.Name())
		return "", err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		os.Remove(out.Name())
		return "", err
	}
	return out.Name(), out.Close()
}
