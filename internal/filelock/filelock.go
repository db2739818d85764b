// Package filelock takes advisory whole-file locks between processes.
// The kernel drops a lock when its holder dies, so a crashed process
// never leaves a data dir locked, which a lock made of a file's mere
// existence (O_EXCL) would.
package filelock

import (
	"context"
	"errors"
	"os"
	"time"
)

// ErrLocked is TryLock's answer when another holder has the lock.
var ErrLocked = errors.New("locked by another process")

// Lock is a held lock. The lock belongs to the open file, not to the
// process: two Locks on one path conflict within one process too.
type Lock struct{ f *os.File }

// TryLock takes the exclusive lock on path, creating the file (0600),
// or answers ErrLocked at once when another holder has it.
func TryLock(path string) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := tryLock(f); err != nil {
		f.Close()
		return nil, err
	}
	return &Lock{f: f}, nil
}

// pollEvery is how often Wait tries again. The holders this waits for
// (a first start making keys) hold the lock for well under a second.
const pollEvery = 20 * time.Millisecond

// Wait takes the exclusive lock on path, waiting until the holder lets
// go or ctx ends. It polls rather than blocks in the kernel, so that
// ctx can end the wait.
func Wait(ctx context.Context, path string) (*Lock, error) {
	for {
		l, err := TryLock(path)
		if !errors.Is(err, ErrLocked) {
			return l, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(pollEvery):
		}
	}
}

// Unlock releases the lock. The file stays: removing it would let a
// waiter lock a file a third process no longer sees.
func (l *Lock) Unlock() error { return l.f.Close() }
