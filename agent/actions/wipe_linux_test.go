//go:build linux && !android

package actions

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/internal/needs"
	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/receipt"
	"github.com/cordon-mdm/cordon/receipt/receipttest"
)

// sysRoot builds the sysfs and mountinfo a Plan reads, under a fixture
// root, so a test never walks (let alone erases) the machine's own disk.
func sysRoot(t *testing.T, mountinfo string) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"sys/dev/block", "sys/block", "proc/self"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "proc/self/mountinfo"), []byte(mountinfo), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

// blockDev adds /sys/block/NAME with its dev number, dm uuid ("" for a
// partition) and slaves, laid out the way the kernel does.
func blockDev(t *testing.T, root, name, devnum, dmUUID string, slaves ...string) {
	t.Helper()
	dir := filepath.Join(root, "sys/block", name)
	if err := os.MkdirAll(filepath.Join(dir, "slaves"), 0o755); err != nil {
		t.Fatal(err)
	}
	if dmUUID != "" {
		os.MkdirAll(filepath.Join(dir, "dm"), 0o755)
		os.WriteFile(filepath.Join(dir, "dm", "uuid"), []byte(dmUUID+"\n"), 0o644)
	}
	for _, s := range slaves {
		if err := os.Symlink(filepath.Join(root, "sys/block", s), filepath.Join(dir, "slaves", s)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(dir, filepath.Join(root, "sys/dev/block", devnum)); err != nil {
		t.Fatal(err)
	}
}

const (
	mountLVM   = "22 1 253:1 / / rw,relatime shared:1 - ext4 /dev/mapper/vg-root rw\n"
	mountPlain = "22 1 259:3 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p3 rw\n"
)

// exitWith produces the error a real tool's failure gives, stderr and all.
func exitWith(code int, stderr string) error {
	_, err := exec.Command("sh", "-c", "echo \"$1\" >&2; exit "+string(rune('0'+code)), "sh", stderr).Output()
	return err
}

func TestPlan(t *testing.T) {
	dir := t.TempDir()
	luksVol, plainVol, deniedVol := filepath.Join(dir, "luks.img"), filepath.Join(dir, "plain.img"), filepath.Join(dir, "denied.img")
	for _, p := range []string{luksVol, plainVol, deniedVol} {
		os.WriteFile(p, nil, 0o600)
	}
	var ran []string
	run := func(ctx context.Context, name string, args ...string) ([]byte, error) {
		ran = append(ran, name+" "+strings.Join(args, " "))
		switch args[len(args)-1] {
		case plainVol:
			return nil, exitWith(1, "")
		case deniedVol:
			return nil, exitWith(4, "Device denied.img does not exist or access denied.")
		}
		return nil, nil
	}
	cfg := WipeConfig{DataVolumes: []string{luksVol, plainVol, deniedVol, filepath.Join(dir, "absent.img")},
		CJIPaths: []string{"/srv/cji"}, PowerOff: true}

	// LVM spanning two LUKS devices: both headers must go.
	root := sysRoot(t, mountLVM)
	blockDev(t, root, "nvme0n1p3", "259:3", "")
	blockDev(t, root, "sda2", "8:2", "")
	blockDev(t, root, "dm-0", "253:0", "CRYPT-LUKS2-3b5c1a2e9d8f4c6b8a7e6d5c4b3a2918-nvme0n1p3_crypt", "nvme0n1p3")
	blockDev(t, root, "dm-2", "253:2", "CRYPT-LUKS1-aaaa-sda2_crypt", "sda2")
	blockDev(t, root, "dm-1", "253:1", "LVM-abcdef", "dm-0", "dm-2")
	p, err := New(cfg, WithRoot(root), WithRunner(run)).Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/dev/nvme0n1p3", "/dev/sda2", luksVol, deniedVol}
	if !slices.Equal(p.LUKSDevices, want) || !slices.Equal(p.CJIPaths, cfg.CJIPaths) || !p.PowerOff {
		t.Fatalf("plan %+v, want devices %v", p, want)
	}
	notes := strings.Join(p.Notes, "\n")
	for _, n := range []string{plainVol + " skipped: not a LUKS volume", "absent.img skipped: no such file",
		deniedVol + ": cryptsetup isLuks could not tell", "access denied"} {
		if !strings.Contains(notes, n) {
			t.Errorf("notes lack %q:\n%s", n, notes)
		}
	}

	// A LUKS layer whose backing device sysfs does not show: the plan is
	// partial and says so.
	root = sysRoot(t, mountLVM)
	blockDev(t, root, "dm-1", "253:1", "CRYPT-LUKS2-bbbb-root")
	p, err = New(WipeConfig{DataVolumes: []string{luksVol}}, WithRoot(root), WithRunner(run)).Plan(context.Background())
	if err == nil || !slices.Equal(p.LUKSDevices, []string{luksVol}) || !strings.Contains(strings.Join(p.Notes, "\n"), "may not be erased") {
		t.Fatalf("unknown backing: %+v, %v", p, err)
	}

	root = sysRoot(t, mountPlain)
	blockDev(t, root, "nvme0n1p3", "259:3", "")
	p, err = New(WipeConfig{}, WithRoot(root), WithRunner(run)).Plan(context.Background())
	if err != nil || len(p.LUKSDevices) != 0 || !strings.Contains(strings.Join(p.Notes, "\n"), "not on LUKS") {
		t.Fatalf("plain root: %+v, %v", p, err)
	}
}

func TestEraseVerifiesTheHeader(t *testing.T) {
	// luksErase exiting 0 is not enough: the key slots must read empty.
	for name, dump := range map[string][2]string{
		"luks1 slot left":  {"Version:       \t1\nKey Slot 0: ENABLED\nKey Slot 1: DISABLED\n", ""},
		"luks1 no slots":   {"Version:       \t1\n", ""},
		"luks2 slot left":  {"Version:       \t2\n", `{"keyslots":{"0":{"type":"luks2"}},"segments":{}}`},
		"luks2 no keyslot": {"Version:       \t2\n", `{"segments":{}}`},
		"unknown version":  {"Version:       \t3\n", ""},
	} {
		run := func(ctx context.Context, name string, args ...string) ([]byte, error) {
			switch {
			case args[0] == "luksDump" && args[1] == "--dump-json-metadata":
				return []byte(dump[1]), nil
			case args[0] == "luksDump":
				return []byte(dump[0]), nil
			}
			return nil, nil
		}
		out := New(WipeConfig{}, WithRunner(run)).Erase(context.Background(), WipePlan{LUKSDevices: []string{"/dev/sda2"}})
		if out.Done || out.Detail["erased"] != "" || !strings.Contains(out.Detail["failed"], "verify /dev/sda2") {
			t.Errorf("%s: %+v", name, out)
		}
	}

	// Nothing to luksErase is not a wipe, whatever else was deleted.
	out := New(WipeConfig{}).Erase(context.Background(), WipePlan{Notes: []string{"the root filesystem is not on LUKS: nothing to erase for it"}})
	if out.Done || !strings.Contains(out.Message, "no LUKS device") || !strings.Contains(out.Detail["notes"], "not on LUKS") {
		t.Fatalf("empty plan: %+v", out)
	}
}

// luksImage formats a LUKS header on a plain file, which cryptsetup
// accepts without root or a loop device.
func luksImage(t *testing.T, img, typ, key string) {
	t.Helper()
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 20<<20); err != nil {
		t.Fatal(err)
	}
	args := []string{"luksFormat", "--batch-mode", "--type", typ, "--key-file", key, "--pbkdf-force-iterations", "1000"}
	if typ == "luks2" {
		args = append(args, "--pbkdf", "pbkdf2")
	}
	if out, err := exec.Command("cryptsetup", append(args, img)...).CombinedOutput(); err != nil {
		t.Fatalf("luksFormat %s: %v\n%s", typ, err, out)
	}
}

func testPassphrase(img, key string) ([]byte, error) {
	return exec.Command("cryptsetup", "open", "--test-passphrase", "--key-file", key, img).CombinedOutput()
}

func TestEraseWithCryptsetup(t *testing.T) {
	needs.Tool(t, "cryptsetup", "cryptsetup-bin")
	dir := t.TempDir()
	key := filepath.Join(dir, "key")
	os.WriteFile(key, []byte("correct horse"), 0o600)
	l2, l1, plain := filepath.Join(dir, "luks2.img"), filepath.Join(dir, "luks1.img"), filepath.Join(dir, "plain.img")
	luksImage(t, l2, "luks2", key)
	luksImage(t, l1, "luks1", key)
	os.WriteFile(plain, make([]byte, 1<<20), 0o600)
	for _, img := range []string{l2, l1} {
		if out, err := testPassphrase(img, key); err != nil {
			t.Fatalf("fresh %s does not open: %v\n%s", img, err, out)
		}
	}

	// CJI: files, a nested directory, and links pointing outside the
	// tree, whose targets are not CJI and must survive.
	cji, outside := filepath.Join(dir, "cji"), filepath.Join(dir, "outside")
	os.MkdirAll(filepath.Join(cji, "sub"), 0o700)
	os.MkdirAll(outside, 0o700)
	os.WriteFile(filepath.Join(cji, "report.txt"), []byte("case 2026-1142"), 0o600)
	os.WriteFile(filepath.Join(cji, "sub", "photo.bin"), bytes.Repeat([]byte{0xAB}, 300<<10), 0o600)
	os.WriteFile(filepath.Join(outside, "target.txt"), []byte("not CJI"), 0o600)
	os.Symlink(filepath.Join(outside, "target.txt"), filepath.Join(cji, "link"))
	os.Symlink(outside, filepath.Join(cji, "sub", "dirlink"))
	// A hard link shares the data: overwriting it in place, not just
	// unlinking the name, is what shows through this one.
	if err := os.Link(filepath.Join(cji, "report.txt"), filepath.Join(outside, "hardlink")); err != nil {
		t.Fatal(err)
	}

	root := sysRoot(t, mountPlain)
	blockDev(t, root, "nvme0n1p3", "259:3", "")
	e := New(WipeConfig{DataVolumes: []string{l2, l1, plain}, CJIPaths: []string{cji, filepath.Join(dir, "never-existed")}}, WithRoot(root))
	ctx := context.Background()
	p, err := e.Plan(ctx)
	if err != nil || !slices.Equal(p.LUKSDevices, []string{l2, l1}) {
		t.Fatalf("plan %+v, %v", p, err)
	}
	if !strings.Contains(strings.Join(p.Notes, "\n"), plain+" skipped: not a LUKS volume") {
		t.Fatalf("the plain volume is not noted as skipped: %q", p.Notes)
	}
	t.Logf("plan:\n%s", p)

	uuids := map[string]string{}
	for _, img := range []string{l2, l1} {
		u, err := exec.Command("cryptsetup", "luksUUID", img).Output()
		if err != nil {
			t.Fatal(err)
		}
		uuids[img] = strings.TrimSpace(string(u))
	}

	out := e.Erase(ctx, p)
	checkReceipt(t, out, uuids, cji)
	if !out.Done || out.Detail["erased"] != l2+","+l1 || out.Detail["deleted"] != "4" || out.Detail["missing"] != "1" || out.Detail["failed"] != "" {
		t.Fatalf("erase: %+v", out)
	}
	if !strings.Contains(out.Detail["notes"], "plain.img skipped") {
		t.Errorf("skipped volume not in the result: %+v", out.Detail)
	}
	for _, img := range []string{l2, l1} {
		msg, err := testPassphrase(img, key)
		if err == nil {
			t.Errorf("%s still opens after the wipe", img)
		}
		if !strings.Contains(string(msg), "No usable keyslot") {
			t.Errorf("%s: unexpected failure %q", img, msg)
		}
	}
	if _, err := os.Lstat(cji); !os.IsNotExist(err) {
		t.Errorf("CJI directory survived: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(outside, "target.txt")); err != nil || string(b) != "not CJI" {
		t.Errorf("symlink target outside the CJI tree was touched: %q, %v", b, err)
	}
	if st, err := os.Stat(filepath.Join(outside, "hardlink")); err != nil || st.Size() != 0 {
		t.Errorf("the CJI file's data was not destroyed in place: %v, %v", st, err)
	}

	// The same plan again: the headers stay LUKS with no key slot, so a
	// repeated wipe command still verifies and reports done.
	if out := e.Erase(ctx, WipePlan{LUKSDevices: p.LUKSDevices}); !out.Done {
		t.Errorf("second erase: %+v", out)
	}
}

// checkReceipt: the wipe's receipt names each erased volume by the UUID
// cryptsetup reports, with header hashes that changed and every key slot
// gone, lists the deleted CJI path, and once signed by a key a CA
// certified for the device, verifies.
func checkReceipt(t *testing.T, out Outcome, uuids map[string]string, cji string) {
	t.Helper()
	r := out.Receipt
	if r == nil {
		t.Fatalf("no receipt: %+v", out.Detail)
	}
	if len(r.Volumes) != len(uuids) || !r.Complete || r.Clock != protocol.ReceiptClock {
		t.Fatalf("receipt %+v", r)
	}
	for _, v := range r.Volumes {
		if v.UUID != uuids[v.Device] || v.UUID == "" {
			t.Errorf("%s: receipt says UUID %q, cryptsetup %q", v.Device, v.UUID, uuids[v.Device])
		}
		if v.HeaderSHA256Before == v.HeaderSHA256After || v.KeySlotsBefore < 1 || v.KeySlotsAfter != 0 || v.HeaderBytes <= 4096 {
			t.Errorf("%s: %+v", v.Device, v)
		}
		if v.ErasedAt.Before(r.StartedAt) {
			t.Errorf("%s erased before the wipe started: %+v", v.Device, v)
		}
	}
	if len(r.CJIPaths) != 1 || r.CJIPaths[0].Path != cji || r.CJIPaths[0].Files != 4 {
		t.Errorf("paths %+v", r.CJIPaths)
	}
	const device = "0b7c8d9e-1f2a-4b3c-9d4e-5f6a7b8c9d0e"
	ca, key := receipttest.New(t), receipttest.Key(t)
	r.DeviceID, r.CommandID, r.SignedAt = device, "wipe-1", time.Now().UTC()
	if err := receipt.Sign(r, key, ca.Device(t, device, key.Public())); err != nil {
		t.Fatal(err)
	}
	file, _ := r.Canonical()
	if _, _, err := receipt.VerifyFile(file, receipt.Options{Roots: ca.Roots(), DeviceID: device}); err != nil {
		t.Fatalf("the signed receipt does not verify: %v\n%s", err, file)
	}
}
