//go:build windows

package keyfile

// Windows has no Unix mode bits; access is governed by the ACL of the
// state directory, which the installer sets.
const permissionsUnenforced = true
