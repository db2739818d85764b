package actions

// The wipe reads a LUKS header back through cryptsetup's luksDump rather
// than trusting that luksErase exited 0. Reading what the dump says needs
// no OS, so it lives here, without a build tag, and its tests run on every
// platform the agent is built for.

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/cordon-mdm/cordon/internal/input"
)

// dumpShowsErased decides from a header's luksDump text whether every
// key slot is gone. A LUKS2 header's slots are in its JSON metadata,
// which metadata fetches only when the dump says version 2.
func dumpShowsErased(dump []byte, metadata func() ([]byte, error)) error {
	switch v := luksVersion(dump); v {
	case "1":
		return luks1Erased(dump)
	case "2":
		js, err := metadata()
		if err != nil {
			return err
		}
		return luks2Erased(js)
	default:
		return fmt.Errorf("luksDump shows LUKS version %q", v)
	}
}

func luksVersion(dump []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(dump))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "Version" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// luks1Erased wants all eight "Key Slot N:" lines present and none
// ENABLED; a dump with no slot lines at all proves nothing.
func luks1Erased(dump []byte) error {
	slots := 0
	sc := bufio.NewScanner(bytes.NewReader(dump))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || !strings.HasPrefix(k, "Key Slot ") {
			continue
		}
		slots++
		if strings.TrimSpace(v) == "ENABLED" {
			return fmt.Errorf("%s is still enabled", k)
		}
	}
	if slots == 0 {
		return errors.New("luksDump lists no key slots")
	}
	return nil
}

func luks2Erased(js []byte) error {
	var h struct {
		Keyslots *map[string]json.RawMessage `json:"keyslots"`
	}
	if err := json.Unmarshal(js, &h); err != nil {
		return fmt.Errorf("LUKS2 metadata: %w", err)
	}
	if h.Keyslots == nil {
		return errors.New("LUKS2 metadata has no keyslots object")
	}
	if n := len(*h.Keyslots); n > 0 {
		return fmt.Errorf("%d key slots remain", n)
	}
	return nil
}

// headerFacts is what a wipe receipt says about a LUKS header: read from
// the volume itself, not from cryptsetup's account of it.
type headerFacts struct {
	Version  int
	UUID     string
	Bytes    int64  // the binary headers, metadata and key slot area
	SHA256   string // of those bytes, hex
	KeySlots int    // in use
}

// maxHeaderBytes bounds what is hashed: a LUKS2 header with the default
// 16 MiB key slot area is 16 MiB; nothing real comes near this.
const maxHeaderBytes = 256 << 20

const (
	luks1SlotActive = 0x00AC71F3
	luks1Slots      = 8
)

// readHeader parses the primary LUKS header of the volume at path (a block
// device or an image file), counts the key slots in use and hashes the
// whole header area: for LUKS1 everything before the payload, for LUKS2
// both binary headers with their JSON metadata and the key slot area,
// which is what luksErase overwrites.
func readHeader(path string) (headerFacts, error) {
	f, err := os.Open(path)
	if err != nil {
		return headerFacts{}, err
	}
	defer f.Close()
	bin := make([]byte, 4096)
	if _, err := io.ReadFull(f, bin); err != nil {
		return headerFacts{}, fmt.Errorf("read LUKS header: %w", err)
	}
	if !bytes.Equal(bin[:6], []byte("LUKS\xba\xbe")) {
		return headerFacts{}, errors.New("no LUKS magic at the start of the volume")
	}
	h := headerFacts{Version: int(binary.BigEndian.Uint16(bin[6:8])), UUID: cString(bin[168:208])}
	switch h.Version {
	case 1:
		h.Bytes = int64(binary.BigEndian.Uint32(bin[104:108])) * 512
		for i := range luks1Slots {
			if binary.BigEndian.Uint32(bin[208+48*i:]) == luks1SlotActive {
				h.KeySlots++
			}
		}
	case 2:
		hdrSize := binary.BigEndian.Uint64(bin[8:16])
		if hdrSize < 4096 || hdrSize > 4<<20 {
			return headerFacts{}, fmt.Errorf("LUKS2 header size %d out of range", hdrSize)
		}
		js := make([]byte, hdrSize-4096)
		if _, err := io.ReadFull(f, js); err != nil {
			return headerFacts{}, fmt.Errorf("read LUKS2 metadata: %w", err)
		}
		var meta struct {
			Keyslots map[string]json.RawMessage `json:"keyslots"`
			Config   struct {
				KeyslotsSize string `json:"keyslots_size"`
			} `json:"config"`
		}
		if err := json.Unmarshal(bytes.TrimRight(js, "\x00"), &meta); err != nil {
			return headerFacts{}, fmt.Errorf("LUKS2 metadata: %w", err)
		}
		area, err := strconv.ParseInt(meta.Config.KeyslotsSize, 10, 64)
		if err != nil || area < 0 {
			return headerFacts{}, fmt.Errorf("LUKS2 metadata: keyslots_size %q", meta.Config.KeyslotsSize)
		}
		h.KeySlots = len(meta.Keyslots)
		h.Bytes = 2*int64(hdrSize) + area
	default:
		return headerFacts{}, fmt.Errorf("LUKS version %d", h.Version)
	}
	if h.Bytes <= 0 || h.Bytes > maxHeaderBytes {
		return headerFacts{}, fmt.Errorf("LUKS header of %d bytes: a detached or damaged header", h.Bytes)
	}
	if h.UUID == "" {
		return headerFacts{}, errors.New("LUKS header without a UUID")
	}
	sum := sha256.New()
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return headerFacts{}, err
	}
	if _, err := io.CopyN(sum, f, h.Bytes); err != nil {
		return headerFacts{}, fmt.Errorf("hash LUKS header: %w", err)
	}
	h.SHA256 = hex.EncodeToString(sum.Sum(nil))
	return h, nil
}

// cString is a NUL-padded header field as text, kept only when printable.
func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	s := string(b)
	if input.Text("uuid", s, len(b)) != nil {
		return ""
	}
	return s
}
