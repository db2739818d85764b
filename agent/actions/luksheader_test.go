package actions

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The dumps in testdata/luks are cryptsetup 2.6.1's own output for a
// LUKS1 and a LUKS2 header, freshly formatted and after luksErase, so
// these tests read what a wipe reads, on any OS.
func dump(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "luks", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDumpShowsErased(t *testing.T) {
	errMetadata := errors.New("luksDump --dump-json-metadata: exit status 1")
	for _, tc := range []struct {
		name     string
		dump     string
		metadata string // "" = fetching it fails
		want     string // "" = erased
	}{
		{"luks1 fresh", "luks1-dump.txt", "-", "Key Slot 0 is still enabled"},
		{"luks1 erased", "luks1-erased-dump.txt", "-", ""},
		{"luks2 fresh", "luks2-dump.txt", "luks2-metadata.json", "1 key slots remain"},
		{"luks2 erased", "luks2-erased-dump.txt", "luks2-erased-metadata.json", ""},
		{"luks2 metadata unreadable", "luks2-erased-dump.txt", "", errMetadata.Error()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fetched := 0
			err := dumpShowsErased(dump(t, tc.dump), func() ([]byte, error) {
				fetched++
				if tc.metadata == "" {
					return nil, errMetadata
				}
				return dump(t, tc.metadata), nil
			})
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
			// The JSON metadata is a second cryptsetup run, needed only
			// for LUKS2.
			if want := map[bool]int{true: 1, false: 0}[tc.metadata != "-"]; fetched != want {
				t.Errorf("metadata fetched %d times, want %d", fetched, want)
			}
		})
	}
}

// A header that luksDump cannot vouch for is never taken as erased.
func TestDumpShowsErasedRefusesWhatProvesNothing(t *testing.T) {
	erasedMetadata := func() ([]byte, error) { return dump(t, "luks2-erased-metadata.json"), nil }
	for name, tc := range map[string]struct {
		dump, metadata, want string
	}{
		"no version":          {"LUKS header information\n", "", `version ""`},
		"version 3":           {"Version:       \t3\n", "", `version "3"`},
		"luks1 without slots": {"Version:       \t1\nUUID: 710d4e75\n", "", "no key slots"},
		"luks1 slot enabled late": {strings.Replace(string(dump(t, "luks1-erased-dump.txt")),
			"Key Slot 7: DISABLED", "Key Slot 7: ENABLED", 1), "", "Key Slot 7 is still enabled"},
		"luks2 without keyslots": {"Version:       \t2\n", `{"segments":{}}`, "no keyslots object"},
		"luks2 null keyslots":    {"Version:       \t2\n", `{"keyslots":null}`, "no keyslots object"},
		"luks2 not JSON":         {"Version:       \t2\n", "Keyslots:\n  0: luks2\n", "LUKS2 metadata"},
		"luks2 keyslots a list":  {"Version:       \t2\n", `{"keyslots":[]}`, "LUKS2 metadata"},
	} {
		metadata := erasedMetadata
		if tc.metadata != "" {
			metadata = func() ([]byte, error) { return []byte(tc.metadata), nil }
		}
		if err := dumpShowsErased([]byte(tc.dump), metadata); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", name, err, tc.want)
		}
	}
}

func TestLUKSVersion(t *testing.T) {
	for name, want := range map[string]string{
		"luks1-dump.txt": "1", "luks1-erased-dump.txt": "1", "luks2-dump.txt": "2", "luks2-erased-dump.txt": "2",
	} {
		if got := luksVersion(dump(t, name)); got != want {
			t.Errorf("%s: version %q, want %q", name, got, want)
		}
	}
}

// FuzzDumpShowsErased feeds arbitrary dumps and metadata. Whatever the
// input, the reading must not panic, must fetch the metadata only for a
// LUKS2 header, and may call a header erased only when it is LUKS1 or
// LUKS2.
func FuzzDumpShowsErased(f *testing.F) {
	for _, pair := range [][2]string{
		{"luks1-dump.txt", ""}, {"luks1-erased-dump.txt", ""},
		{"luks2-dump.txt", "luks2-metadata.json"}, {"luks2-erased-dump.txt", "luks2-erased-metadata.json"},
	} {
		var js []byte
		if pair[1] != "" {
			js = dump(f, pair[1])
		}
		f.Add(dump(f, pair[0]), js)
	}
	f.Add([]byte("Version: 2\n"), []byte(`{"keyslots":{"0":{}}}`))
	f.Fuzz(func(t *testing.T, text, js []byte) {
		fetched := 0
		err := dumpShowsErased(text, func() ([]byte, error) { fetched++; return js, nil })
		v := luksVersion(text)
		if want := map[bool]int{true: 1, false: 0}[v == "2"]; fetched != want {
			t.Fatalf("version %q: metadata fetched %d times", v, fetched)
		}
		if err == nil && v != "1" && v != "2" {
			t.Fatalf("version %q read as erased", v)
		}
	})
}

// TestReadHeaderCountsLUKS1SlotsAndRefusesWhatIsNotLUKS: a hand-made
// LUKS1 header (payload at 8 sectors, slots 0 and 3 enabled) is hashed
// over exactly its 4096 bytes; a volume without the magic, or a header
// with no payload offset (detached), gives no facts.
func TestReadHeaderCountsLUKS1SlotsAndRefusesWhatIsNotLUKS(t *testing.T) {
	dir := t.TempDir()
	hdr := make([]byte, 8192)
	copy(hdr, "LUKS\xba\xbe\x00\x01")
	binary.BigEndian.PutUint32(hdr[104:], 8)
	copy(hdr[168:], "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d")
	binary.BigEndian.PutUint32(hdr[208:], luks1SlotActive)
	binary.BigEndian.PutUint32(hdr[208+3*48:], luks1SlotActive)
	binary.BigEndian.PutUint32(hdr[208+48:], 0x0000DEAD)
	img := filepath.Join(dir, "luks1.img")
	os.WriteFile(img, hdr, 0o600)
	h, err := readHeader(img)
	want := sha256.Sum256(hdr[:4096])
	if err != nil || h.Version != 1 || h.KeySlots != 2 || h.Bytes != 4096 || h.UUID != "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d" ||
		h.SHA256 != hex.EncodeToString(want[:]) {
		t.Fatalf("facts %+v, %v", h, err)
	}
	binary.BigEndian.PutUint32(hdr[104:], 0)
	os.WriteFile(img, hdr, 0o600)
	if _, err := readHeader(img); err == nil {
		t.Error("a header without a payload offset gave facts")
	}
	plain := filepath.Join(dir, "plain.img")
	os.WriteFile(plain, make([]byte, 8192), 0o600)
	if _, err := readHeader(plain); err == nil {
		t.Error("a volume without LUKS magic gave facts")
	}
}
