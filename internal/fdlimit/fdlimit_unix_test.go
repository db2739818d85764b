//go:build unix

package fdlimit

import (
	"runtime"
	"syscall"
	"testing"
)

func TestRaiseLiftsTheSoftLimitToTheHardOne(t *testing.T) {
	var before syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &before); err != nil {
		t.Fatal(err)
	}
	if before.Max < 64 {
		t.Skipf("hard limit %d leaves no room to lower the soft one", before.Max)
	}
	t.Cleanup(func() { syscall.Setrlimit(syscall.RLIMIT_NOFILE, &before) })
	low := before
	low.Cur = 64
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	l, err := Raise()
	if err != nil {
		t.Fatal(err)
	}
	var now syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &now); err != nil {
		t.Fatal(err)
	}
	if l.Hard != uint64(now.Max) || l.Soft != uint64(now.Cur) {
		t.Fatalf("Raise said %+v; the limit is %d/%d", l, now.Cur, now.Max)
	}
	// Linux takes any soft limit up to the hard one.
	if runtime.GOOS == "linux" && now.Cur != now.Max {
		t.Fatalf("soft limit %d after Raise, want the hard %d", now.Cur, now.Max)
	}
}
