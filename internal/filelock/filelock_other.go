//go:build !(linux || darwin || freebsd || openbsd || netbsd || dragonfly || windows)

package filelock

import (
	"errors"
	"os"
	"runtime"
)

func tryLock(*os.File) error {
	return errors.New("file locks are not supported on " + runtime.GOOS)
}
