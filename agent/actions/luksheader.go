package actions

// The wipe reads a LUKS header back through cryptsetup's luksDump rather
// than trusting that luksErase exited 0. Reading what the dump says needs
// no OS, so it lives here, without a build tag, and its tests run on every
// platform the agent is built for.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
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
