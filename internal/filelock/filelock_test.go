package filelock

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

func TestTryLockRefusesASecondHolderUntilTheFirstLetsGo(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	a, err := TryLock(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := TryLock(path); !errors.Is(err, ErrLocked) {
		t.Fatalf("second TryLock: %v, want ErrLocked", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := Wait(ctx, path); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait on a held lock: %v, want the context's end", err)
	}
	if err := a.Unlock(); err != nil {
		t.Fatal(err)
	}
	b, err := Wait(context.Background(), path)
	if err != nil {
		t.Fatalf("Wait after Unlock: %v", err)
	}
	b.Unlock()
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("lock file: %v %v", st, err)
	}
}

// The helper process holds the lock until it is killed.
func TestHelperHoldLock(t *testing.T) {
	path := os.Getenv("FILELOCK_HOLD")
	if path == "" {
		t.Skip("helper process")
	}
	if _, err := TryLock(path); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(path+".held", nil, 0o600)
	time.Sleep(time.Hour)
}

// A process that dies holding the lock leaves it free: no stale lock
// after a crash.
func TestTheLockDiesWithItsProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHoldLock$")
	cmd.Env = append(os.Environ(), "FILELOCK_HOLD="+path)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(path + ".held"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("the helper process never took the lock")
		}
	}
	if _, err := TryLock(path); !errors.Is(err, ErrLocked) {
		cmd.Process.Kill()
		t.Fatalf("lock held by another process: %v, want ErrLocked", err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	l, err := Wait(context.Background(), path)
	if err != nil {
		t.Fatalf("lock after its holder died: %v", err)
	}
	l.Unlock()
}
