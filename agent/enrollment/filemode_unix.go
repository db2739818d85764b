//go:build !windows

package enrollment

import (
	"fmt"
	"io/fs"
)

// checkFileMode refuses an enrollment file that others than its owner
// may write and warns of one that anyone may read.
func checkFileMode(path string, fi fs.FileInfo) (string, error) {
	perm := fi.Mode().Perm()
	if perm&0o022 != 0 {
		return "", fmt.Errorf("%s is writable by others (mode %04o): refused, it could point this device at another server; chmod 600 it", path, perm)
	}
	if perm&0o004 != 0 {
		return fmt.Sprintf("%s is readable by every local user (mode %04o): its enrollment token should be kept 0600", path, perm), nil
	}
	return "", nil
}
