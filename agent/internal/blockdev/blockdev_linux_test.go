//go:build linux

package blockdev

import (
	"bufio"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNumberMatchesSysfs checks every block device node the machine has
// against the number sysfs files it under, which is what both callers
// rely on.
func TestNumberMatchesSysfs(t *testing.T) {
	entries, err := os.ReadDir("/sys/dev/block")
	if err != nil {
		t.Skipf("no sysfs block directory: %v", err)
	}
	checked := 0
	for _, e := range entries {
		name := devName(filepath.Join("/sys/dev/block", e.Name(), "uevent"))
		if name == "" {
			continue
		}
		got, err := Number(filepath.Join("/dev", name))
		if errors.Is(err, fs.ErrNotExist) {
			continue // sysfs shows devices a container's /dev lacks
		}
		if err != nil || got != e.Name() {
			t.Errorf("/dev/%s: got %q, %v; sysfs says %s", name, got, err, e.Name())
		}
		checked++
	}
	if checked == 0 {
		t.Skip("no block device node in /dev to compare with sysfs")
	}
}

func devName(uevent string) string {
	f, err := os.Open(uevent)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "DEVNAME="); ok {
			return v
		}
	}
	return ""
}

func TestNumberRefusesWhatIsNotABlockDevice(t *testing.T) {
	file := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/dev/null", file, filepath.Dir(file)} {
		if got, err := Number(p); err == nil || !strings.Contains(err.Error(), "is not a block device") {
			t.Errorf("%s: got %q, %v", p, got, err)
		}
	}
	if _, err := Number(filepath.Join(filepath.Dir(file), "absent")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("absent node: %v", err)
	}
}
