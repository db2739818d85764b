// Package atomicfile writes files so that a reader, or a process started
// after a crash, sees the old content or the new, never half of either.
package atomicfile

import (
	"os"
	"path/filepath"
)

// Write writes data to path via a synced temporary file in the same
// directory, renames it over path and syncs the directory.
func Write(path string, data []byte, perm os.FileMode) error {
	return place(path, data, perm, os.Rename)
}

// Create writes data to path like Write, but only when path does not
// exist yet: otherwise it answers an error wrapping fs.ErrExist. The
// synced temporary file is hard-linked into place, which fails when the
// name is taken, so of processes creating one file at once exactly one
// succeeds and none replaces what another made.
func Create(path string, data []byte, perm os.FileMode) error {
	return place(path, data, perm, os.Link)
}

// place writes data to a synced temporary file beside path, moves it
// there with put, and syncs the directory.
func place(path string, data []byte, perm os.FileMode, put func(tmp, path string) error) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
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
	if err := put(tmp, path); err != nil {
		return err
	}
	return SyncDir(dir)
}

// SyncDir makes a rename or removal in dir durable. Not every platform
// can sync a directory (Windows cannot open one for writing); there the
// rename itself is the best available.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return nil
	}
	defer d.Close()
	_ = d.Sync()
	return nil
}
