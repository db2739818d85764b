package input

import "unicode/utf8"

// Clip cuts s to at most max bytes without splitting a UTF-8 sequence:
// a byte cut (s[:max]) can leave half a rune, which the next edge then
// refuses or turns into U+FFFD. It is the one copy every clipper uses.
func Clip(s string, max int) string {
	if max < 0 {
		max = 0
	}
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}
