//go:build windows

package selfupdate

import "os"

// keepPrevious renames the running build to exe.prev: Windows allows
// renaming a running executable but not replacing it, so the old build
// moves aside and the new one takes its name (swap).
func keepPrevious(exe string) error {
	os.Remove(exe + PrevSuffix)
	return os.Rename(exe, exe+PrevSuffix)
}

// swap renames src to dst, which keepPrevious (or a rollback's kill of
// the new build) has freed.
func swap(src, dst string) error {
	if err := os.Rename(src, dst); err == nil {
		return nil
	}
	// A rollback over a build that still runs: move it aside first.
	os.Remove(dst + ".failed")
	if err := os.Rename(dst, dst+".failed"); err != nil {
		return err
	}
	return os.Rename(src, dst)
}
