//go:build !windows

package selfupdate

import (
	"os"
	"path/filepath"

	"github.com/cordon-mdm/cordon/internal/atomicfile"
)

// keepPrevious copies the running build to exe.prev (a copy renamed into
// place): exe itself stays in place, so the path a service manager starts
// always holds a complete binary.
func keepPrevious(exe string) error {
	tmp, err := copyBeside(exe, exe+PrevSuffix)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := os.Rename(tmp, exe+PrevSuffix); err != nil {
		return err
	}
	atomicfile.SyncDir(filepath.Dir(exe))
	return nil
}

// swap renames src over dst: atomic on one file system, and allowed over
// a running executable (the running process keeps its inode).
func swap(src, dst string) error { return os.Rename(src, dst) }
