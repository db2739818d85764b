package android

import (
	"fmt"
	"strings"
	"unicode"

	"github.com/cordon-mdm/cordon/internal/input"
)

// NormalizeAddress accepts a Bluetooth address as six hexadecimal octets
// separated by ':' or '-', in either case, and returns it as Android and
// BlueZ print it, "AA:BB:CC:DD:EE:FF".
func NormalizeAddress(s string) (string, error) {
	if len(s) != 17 {
		return "", fmt.Errorf("Bluetooth address %q: want AA:BB:CC:DD:EE:FF", input.Clip(s, 32))
	}
	out := make([]byte, 17)
	sep := s[2]
	for i := 0; i < 17; i++ {
		c := s[i]
		if i%3 == 2 {
			if c != sep || (c != ':' && c != '-') {
				return "", fmt.Errorf("Bluetooth address %q: want AA:BB:CC:DD:EE:FF", s)
			}
			out[i] = ':'
			continue
		}
		switch {
		case c >= '0' && c <= '9', c >= 'A' && c <= 'F':
		case c >= 'a' && c <= 'f':
			c -= 'a' - 'A'
		default:
			return "", fmt.Errorf("Bluetooth address %q: want AA:BB:CC:DD:EE:FF", s)
		}
		out[i] = c
	}
	return string(out), nil
}

// cleanText makes text from the host app (device names come from the
// remote devices themselves) safe to log and show: valid UTF-8, no
// control characters, at most max bytes.
func cleanText(s string, limit int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
	return input.Clip(strings.TrimSpace(s), limit)
}
