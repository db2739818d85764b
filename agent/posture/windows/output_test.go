package windows

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// A reason quoting a tool's output is cut to maxReason bytes on a
// character boundary, and says it was cut.
func TestClipCutsOnACharacter(t *testing.T) {
	if got := clip("BitLocker \x1b[2J off"); got != "BitLocker ?[2J off" {
		t.Errorf("short output: %q", got)
	}
	got := clip("x" + strings.Repeat("é", maxReason))
	head, cut := strings.CutSuffix(got, "…")
	if !cut || !utf8.ValidString(got) || len(head) > maxReason || len(head) < maxReason-1 {
		t.Errorf("long output: %d bytes, valid %t, ends %q", len(got), utf8.ValidString(got), got[len(got)-8:])
	}
}
