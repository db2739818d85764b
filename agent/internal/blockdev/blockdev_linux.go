//go:build linux

package blockdev

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Number returns the "MAJ:MIN" of the block device node at path. A node
// that is not a block device (a character device, a regular file) is an
// error: its numbers would name some other device in sysfs.
func Number(path string) (string, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return "", err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return "", fmt.Errorf("%s is not a block device", path)
	}
	return fmt.Sprintf("%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev)), nil
}
