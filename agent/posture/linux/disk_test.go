package linux

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/cordon-mdm/cordon/internal/needs"
	"github.com/cordon-mdm/cordon/protocol"
)

// sysTree builds a sysfs and /proc fixture for the walk from "/" to its
// block device: devices maps a sysfs block name to its dm uuid ("" for a
// plain partition) and its slaves.
type sysTree struct {
	t    *testing.T
	root string
}

func newSysTree(t *testing.T, mountinfo string) *sysTree {
	root := t.TempDir()
	for _, d := range []string{"sys/dev/block", "sys/block", "proc/self"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "proc/self/mountinfo"), []byte(mountinfo), 0o644); err != nil {
		t.Fatal(err)
	}
	return &sysTree{t: t, root: root}
}

// device adds /sys/block/NAME with its dev number, dm uuid and slaves
// (as symlinks, the way the kernel lays them out).
func (s *sysTree) device(name, devnum, dmUUID string, slaves ...string) {
	dir := filepath.Join(s.root, "sys/block", name)
	if err := os.MkdirAll(filepath.Join(dir, "slaves"), 0o755); err != nil {
		s.t.Fatal(err)
	}
	if dmUUID != "" {
		os.MkdirAll(filepath.Join(dir, "dm"), 0o755)
		os.WriteFile(filepath.Join(dir, "dm", "uuid"), []byte(dmUUID+"\n"), 0o644)
	}
	for _, sl := range slaves {
		if err := os.Symlink(filepath.Join(s.root, "sys/block", sl), filepath.Join(dir, "slaves", sl)); err != nil {
			s.t.Fatal(err)
		}
	}
	if err := os.Symlink(dir, filepath.Join(s.root, "sys/dev/block", devnum)); err != nil {
		s.t.Fatal(err)
	}
}

func (s *sysTree) system(dump func(context.Context, string, bool) ([]byte, error)) System {
	return System{Sys: filepath.Join(s.root, "sys"), Mountinfo: filepath.Join(s.root, "proc/self/mountinfo"),
		Dev: "/dev", LuksDump: dump,
		DevNum: func(p string) (string, error) {
			if p == "/dev/mapper/vg-root" {
				return "253:1", nil
			}
			return "", errors.New("no such device")
		}}
}

const (
	mountExt4 = "22 1 253:1 / / rw,relatime shared:1 - ext4 /dev/mapper/vg-root rw\n" +
		"23 22 0:21 / /proc rw shared:12 - proc proc rw\n"
	mountBtrfs = "22 1 0:31 /@ / rw,relatime shared:1 - btrfs /dev/mapper/vg-root rw,subvol=/@\n"
	mountPlain = "22 1 259:3 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p3 rw\n"
)

// luksImage formats a real LUKS header on a file, as the installer would
// on a partition, and returns a dump function that reads it with the
// real cryptsetup whatever device path the walk asks for.
func luksImage(t *testing.T, typ string) func(context.Context, string, bool) ([]byte, error) {
	t.Helper()
	needs.Tool(t, "cryptsetup", "cryptsetup-bin")
	dir := t.TempDir()
	img, key := filepath.Join(dir, "disk.img"), filepath.Join(dir, "key")
	os.WriteFile(key, []byte("correct horse"), 0o600)
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 20<<20); err != nil {
		t.Fatal(err)
	}
	args := []string{"luksFormat", "--batch-mode", "--type", typ, "--key-file", key, "--pbkdf-force-iterations", "1000",
		"--cipher", "aes-xts-plain64", "--key-size", "512"}
	if typ == "luks2" {
		args = append(args, "--pbkdf", "pbkdf2")
	}
	if out, err := exec.Command("cryptsetup", append(args, img)...).CombinedOutput(); err != nil {
		t.Fatalf("luksFormat: %v\n%s", err, out)
	}
	return func(ctx context.Context, dev string, json bool) ([]byte, error) {
		if dev != "/dev/nvme0n1p3" {
			return nil, errors.New("walk asked for the wrong device " + dev)
		}
		a := []string{"luksDump"}
		if json {
			a = append(a, "--dump-json-metadata")
		}
		return exec.CommandContext(ctx, "cryptsetup", append(a, img)...).Output()
	}
}

func TestDiskLUKS2UnderLVM(t *testing.T) {
	tree := newSysTree(t, mountExt4)
	tree.device("nvme0n1p3", "259:3", "")
	tree.device("dm-0", "253:0", "CRYPT-LUKS2-3b5c1a2e9d8f4c6b8a7e6d5c4b3a2918-nvme0n1p3_crypt", "nvme0n1p3")
	tree.device("dm-1", "253:1", "LVM-abcdefABCDEF0123456789abcdefABCDEF0123456789abcdefABCDEF0123", "dm-0")
	d := Disk(context.Background(), tree.system(luksImage(t, "luks2")))
	want := protocol.DiskEncryption{State: protocol.DiskEncrypted, Volume: "/", Device: "/dev/dm-1", Scheme: "luks2", Cipher: "aes-xts-plain64", KeyBits: 512}
	if d.State != want.State || d.Device != want.Device || d.Scheme != want.Scheme || d.Cipher != want.Cipher || d.KeyBits != want.KeyBits || len(d.Unknown) != 0 {
		t.Fatalf("got %+v, want %+v", d, want)
	}
}

func TestDiskLUKS1OnBtrfs(t *testing.T) {
	tree := newSysTree(t, mountBtrfs)
	tree.device("nvme0n1p3", "259:3", "")
	tree.device("dm-1", "253:1", "CRYPT-LUKS1-3b5c1a2e9d8f4c6b8a7e6d5c4b3a2918-vg-root", "nvme0n1p3")
	d := Disk(context.Background(), tree.system(luksImage(t, "luks1")))
	if d.State != protocol.DiskEncrypted || d.Scheme != "luks1" || d.Cipher != "aes-xts-plain64" || d.KeyBits != 512 {
		t.Fatalf("got %+v", d)
	}
}

func TestDiskUnencryptedAndUnknown(t *testing.T) {
	tree := newSysTree(t, mountPlain)
	tree.device("nvme0n1p3", "259:3", "")
	if d := Disk(context.Background(), tree.system(nil)); d.State != protocol.DiskUnencrypted || len(d.Unknown) != 0 {
		t.Fatalf("plain partition: %+v", d)
	}

	// An LVM volume spanning an encrypted and a plain device is not
	// encrypted as a whole.
	tree = newSysTree(t, mountExt4)
	tree.device("sda1", "8:1", "")
	tree.device("nvme0n1p3", "259:3", "")
	tree.device("dm-0", "253:0", "CRYPT-LUKS2-aa-crypt", "nvme0n1p3")
	tree.device("dm-1", "253:1", "LVM-xyz", "dm-0", "sda1")
	if d := Disk(context.Background(), tree.system(nil)); d.State != protocol.DiskUnencrypted {
		t.Fatalf("half-encrypted LVM: %+v", d)
	}

	// Each missing source makes the state unknown with its reason.
	for name, sys := range map[string]System{
		"no mountinfo": {Sys: tree.root, Mountinfo: filepath.Join(tree.root, "missing")},
		"no sysfs":     {Sys: filepath.Join(tree.root, "nosys"), Mountinfo: filepath.Join(tree.root, "proc/self/mountinfo")},
	} {
		d := Disk(context.Background(), sys)
		if d.State != protocol.DiskUnknown || d.Unknown["state"] == "" {
			t.Errorf("%s: %+v", name, d)
		}
	}
	tree = newSysTree(t, "22 1 0:31 / / rw - btrfs rootfs rw\n")
	if d := Disk(context.Background(), tree.system(nil)); d.State != protocol.DiskUnknown || d.Unknown["state"] == "" {
		t.Errorf("anonymous device without a /dev source: %+v", d)
	}

	// Encrypted, but the header cannot be read: the state stands, the
	// cipher is unknown with the reason.
	tree = newSysTree(t, mountExt4)
	tree.device("nvme0n1p3", "259:3", "")
	tree.device("dm-1", "253:1", "CRYPT-LUKS2-aa-crypt", "nvme0n1p3")
	failing := func(context.Context, string, bool) ([]byte, error) { return nil, errors.New("permission denied") }
	d := Disk(context.Background(), tree.system(failing))
	if d.State != protocol.DiskEncrypted || d.Cipher != "" || d.Unknown["cipher"] == "" {
		t.Fatalf("unreadable header: %+v", d)
	}
}

func TestParseLuks2Erased(t *testing.T) {
	// luksErase leaves the header but no key slot.
	_, _, err := ParseLuks2JSON([]byte(`{"keyslots":{},"segments":{"0":{"type":"crypt","encryption":"aes-xts-plain64"}}}`))
	if err == nil {
		t.Fatal("an erased header must not report a key size")
	}
}

func TestUnescapeMount(t *testing.T) {
	if got := unescapeMount(`/dev/disk\040one`); got != "/dev/disk one" {
		t.Fatalf("got %q", got)
	}
}

func FuzzParseLuks2JSON(f *testing.F) {
	f.Add([]byte(`{"keyslots":{"0":{"key_size":64}},"segments":{"0":{"type":"crypt","encryption":"aes-xts-plain64"}}}`))
	f.Fuzz(func(t *testing.T, b []byte) { ParseLuks2JSON(b) })
}

func FuzzRootMount(f *testing.F) {
	f.Add([]byte(mountExt4))
	f.Add([]byte(mountBtrfs))
	f.Fuzz(func(t *testing.T, b []byte) { rootMount(b) })
}

func FuzzParseLuks1Dump(f *testing.F) {
	f.Add([]byte("Cipher name:   \taes\nCipher mode:   \txts-plain64\nMK bits:       \t512\n"))
	f.Fuzz(func(t *testing.T, b []byte) { ParseLuks1Dump(b) })
}
