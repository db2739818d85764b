//go:build !windows

package keyfile

const permissionsUnenforced = false
