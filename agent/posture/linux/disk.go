package linux

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/cordon-mdm/cordon/protocol"
)

// System is where the disk walk reads from: the real paths in production,
// a fixture tree in tests.
type System struct {
	Sys       string                            // "/sys"
	Mountinfo string                            // "/proc/self/mountinfo"
	Dev       string                            // "/dev"
	DevNum    func(path string) (string, error) // "MAJ:MIN" of a block device node
	LuksDump  func(ctx context.Context, device string, json bool) ([]byte, error)
}

// Disk reports the encryption of the filesystem mounted at "/": it walks
// from the mount to its block device and down through device-mapper
// (LVM, crypt) to find a LUKS layer, then reads the cipher from the LUKS
// header.
func Disk(ctx context.Context, sys System) *protocol.DiskEncryption {
	d := &protocol.DiskEncryption{State: protocol.DiskUnknown, Volume: "/"}
	d.Source = "mountinfo, sysfs dm/uuid, cryptsetup luksDump"
	block, err := rootBlock(sys)
	if err != nil {
		d.SetUnknown("state", err.Error())
		return d
	}
	d.Device = filepath.Join(sys.Dev, filepath.Base(block))
	crypt, backing, err := findCrypt(block, 0)
	if err != nil {
		d.SetUnknown("state", err.Error())
		return d
	}
	if crypt == "" {
		d.State = protocol.DiskUnencrypted
		return d
	}
	d.State = protocol.DiskEncrypted
	d.Scheme = crypt
	if !strings.HasPrefix(crypt, "luks") {
		d.SetUnknown("cipher", "not a LUKS volume: no header to read the cipher from")
		return d
	}
	if backing == "" {
		d.SetUnknown("cipher", "the LUKS device has no backing device in sysfs")
		return d
	}
	dev := filepath.Join(sys.Dev, backing)
	if sys.LuksDump == nil {
		d.SetUnknown("cipher", "cryptsetup not available")
		return d
	}
	cipher, bits, err := readLuksHeader(ctx, sys.LuksDump, dev, crypt)
	if err != nil {
		d.SetUnknown("cipher", fmt.Sprintf("luksDump %s: %v", dev, err))
		return d
	}
	d.Cipher, d.KeyBits = cipher, bits
	return d
}

// rootBlock resolves the filesystem mounted at "/" to its sysfs block
// device directory.
func rootBlock(sys System) (string, error) {
	mi, err := os.ReadFile(sys.Mountinfo)
	if err != nil {
		return "", errors.New("cannot read mountinfo: " + err.Error())
	}
	devnum, source, err := rootMount(mi)
	if err != nil {
		return "", err
	}
	// btrfs and some others report an anonymous device number; the mount
	// source names the real block device.
	if strings.HasPrefix(devnum, "0:") {
		if sys.DevNum == nil || !strings.HasPrefix(source, "/dev/") {
			return "", fmt.Errorf("root filesystem is on anonymous device %s from %q", devnum, source)
		}
		if devnum, err = sys.DevNum(source); err != nil {
			return "", fmt.Errorf("root filesystem source %s: %v", source, err)
		}
	}
	block, err := filepath.EvalSymlinks(filepath.Join(sys.Sys, "dev/block", devnum))
	if err != nil {
		return "", fmt.Errorf("no sysfs entry for root device %s: %v", devnum, err)
	}
	return block, nil
}

// LuksBacking returns the /dev paths of every LUKS header under the root
// filesystem, for a remote wipe to luksErase. Unlike Disk it does not stop
// at the first crypt layer: LVM across several LUKS devices, or LUKS
// stacked on LUKS, leaves a header on each, and every one must go. Plain
// dm-crypt layers have no header (their key never touches the disk) and
// are not listed. An unencrypted root gives an empty list and no error.
func LuksBacking(sys System) ([]string, error) {
	block, err := rootBlock(sys)
	if err != nil {
		return nil, err
	}
	var devs []string
	if err := collectLuks(block, sys.Dev, 0, &devs); err != nil {
		return nil, err
	}
	return devs, nil
}

func collectLuks(block, dev string, depth int, out *[]string) error {
	if depth > 8 {
		return errors.New("device-mapper stack deeper than 8 levels")
	}
	slaves, err := os.ReadDir(filepath.Join(block, "slaves"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	uuid, err := os.ReadFile(filepath.Join(block, "dm", "uuid"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read %s: %w", filepath.Join(block, "dm", "uuid"), err)
	}
	if u := strings.TrimSpace(string(uuid)); strings.HasPrefix(u, "CRYPT-LUKS") {
		// Without exactly one slave the header's device is unknown, and
		// a wipe that silently skipped it would claim too much.
		if len(slaves) != 1 {
			return fmt.Errorf("LUKS device %s has %d backing devices in sysfs, want 1", filepath.Base(block), len(slaves))
		}
		p := filepath.Join(dev, slaves[0].Name())
		if !slices.Contains(*out, p) {
			*out = append(*out, p)
		}
	}
	for _, s := range slaves {
		if err := collectLuks(filepath.Join(block, "slaves", s.Name()), dev, depth+1, out); err != nil {
			return err
		}
	}
	return nil
}

// rootMount returns the device number and source of the "/" mount. The
// last "/" mount wins: later mounts stack on top of earlier ones.
func rootMount(mountinfo []byte) (devnum, source string, err error) {
	sc := bufio.NewScanner(bytes.NewReader(mountinfo))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		// id parent maj:min root mountpoint options [optional...] - fstype source superopts
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		f := strings.Fields(pre)
		g := strings.Fields(post)
		if len(f) < 5 || len(g) < 2 || f[4] != "/" {
			continue
		}
		devnum, source = f[2], unescapeMount(g[1])
	}
	if devnum == "" {
		return "", "", errors.New("no mount at / in mountinfo")
	}
	if _, _, ok := strings.Cut(devnum, ":"); !ok {
		return "", "", fmt.Errorf("malformed device number %q in mountinfo", devnum)
	}
	return devnum, source, nil
}

// unescapeMount undoes mountinfo's octal escapes (\040 for space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// findCrypt walks a block device and its device-mapper slaves looking for
// a crypt target. It returns the scheme ("luks2", "luks1", "dm-crypt")
// and the name of the device holding the LUKS header.
func findCrypt(block string, depth int) (scheme, backing string, err error) {
	if depth > 8 {
		return "", "", errors.New("device-mapper stack deeper than 8 levels")
	}
	uuid, err := os.ReadFile(filepath.Join(block, "dm", "uuid"))
	if err == nil {
		u := strings.TrimSpace(string(uuid))
		if strings.HasPrefix(u, "CRYPT-") {
			scheme = "dm-crypt"
			switch {
			case strings.HasPrefix(u, "CRYPT-LUKS2-"):
				scheme = "luks2"
			case strings.HasPrefix(u, "CRYPT-LUKS1-"):
				scheme = "luks1"
			}
			slaves, _ := os.ReadDir(filepath.Join(block, "slaves"))
			if len(slaves) == 1 {
				backing = slaves[0].Name()
			}
			return scheme, backing, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", "", fmt.Errorf("read %s: %w", filepath.Join(block, "dm", "uuid"), err)
	}
	slaves, err := os.ReadDir(filepath.Join(block, "slaves"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", "", err
	}
	// An LVM volume spanning several devices is encrypted only if every
	// one of them is: report the first that is not.
	var found, foundBacking string
	for _, s := range slaves {
		sc, sb, err := findCrypt(filepath.Join(block, "slaves", s.Name()), depth+1)
		if err != nil {
			return "", "", err
		}
		if sc == "" {
			return "", "", nil
		}
		if found == "" {
			found, foundBacking = sc, sb
		}
	}
	return found, foundBacking, nil
}

// luks2Header is the part of `luksDump --dump-json-metadata` we read.
type luks2Header struct {
	Keyslots map[string]struct {
		KeySize int `json:"key_size"`
	} `json:"keyslots"`
	Segments map[string]struct {
		Type       string `json:"type"`
		Encryption string `json:"encryption"`
	} `json:"segments"`
}

func readLuksHeader(ctx context.Context, dump func(context.Context, string, bool) ([]byte, error), dev, scheme string) (string, int, error) {
	if scheme == "luks2" {
		out, err := dump(ctx, dev, true)
		if err != nil {
			return "", 0, err
		}
		return ParseLuks2JSON(out)
	}
	out, err := dump(ctx, dev, false)
	if err != nil {
		return "", 0, err
	}
	return ParseLuks1Dump(out)
}

// ParseLuks2JSON reads the data segment's cipher and the volume key size
// from LUKS2 JSON metadata.
func ParseLuks2JSON(b []byte) (cipher string, keyBits int, err error) {
	var h luks2Header
	if err := json.Unmarshal(b, &h); err != nil {
		return "", 0, fmt.Errorf("LUKS2 metadata: %w", err)
	}
	ids := make([]string, 0, len(h.Segments))
	for id := range h.Segments {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if s := h.Segments[id]; s.Type == "crypt" && s.Encryption != "" {
			cipher = s.Encryption
			break
		}
	}
	if cipher == "" {
		return "", 0, errors.New("LUKS2 metadata has no crypt segment")
	}
	// Every key slot wraps the same volume key, so any slot's size is
	// the volume key's. No slot at all means the volume was erased.
	for _, k := range h.Keyslots {
		if k.KeySize > 0 {
			keyBits = max(keyBits, k.KeySize*8)
		}
	}
	if keyBits == 0 {
		return cipher, 0, errors.New("LUKS2 header has no key slot (erased?)")
	}
	return cipher, keyBits, nil
}

// ParseLuks1Dump reads cipher and master key size from luksDump's text.
func ParseLuks1Dump(b []byte) (cipher string, keyBits int, err error) {
	var name, mode string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch strings.TrimSpace(k) {
		case "Cipher name":
			name = v
		case "Cipher mode":
			mode = v
		case "MK bits":
			keyBits, _ = strconv.Atoi(v)
		}
	}
	if name == "" || keyBits <= 0 {
		return "", 0, errors.New("luksDump output has no cipher or MK bits")
	}
	if mode != "" {
		name += "-" + mode
	}
	return name, keyBits, nil
}
