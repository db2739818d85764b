package macos

import (
	"bytes"
	"strings"

	"github.com/cordon-mdm/cordon/internal/input"
)

// Output is one run of a tool as the glue saw it.
type Output struct {
	// Command names the run in reasons, e.g. "fdesetup status".
	Command string
	Stdout  []byte
	Stderr  []byte
	// Err is why the tool could not be run or how it failed (exit status,
	// timeout); nil when it exited 0.
	Err error
}

// maxReason keeps every reason well inside the report's text limit
// (protocol maxText), whatever a tool printed.
const maxReason = 300

// failure says why the run cannot be used, or "" when it can. The first
// line of stderr is kept because it is usually the tool's own
// explanation (not root, no such default, ...).
func (o Output) failure() string {
	if o.Err == nil {
		return ""
	}
	msg := o.Command + ": " + o.Err.Error()
	if s := firstLine(o.Stderr); s != "" {
		msg += ": " + s
	}
	return clip(msg)
}

// combined is stdout then stderr: several tools (sysadminctl,
// softwareupdate) print their answer on stderr.
func (o Output) combined() string {
	return string(o.Stdout) + "\n" + string(o.Stderr)
}

func firstLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = strings.TrimSpace(s[:i])
	}
	return s
}

// clip shortens s to maxReason bytes on a rune boundary and drops bytes
// that are not UTF-8, so a garbled tool output cannot make a report
// invalid.
func clip(s string) string {
	s = input.Printable(s) // output quoted here may hold anything
	if len(s) <= maxReason {
		return s
	}
	return input.Clip(s, maxReason) + "..."
}

// unrecognised is the reason given for output none of the known formats
// match; a sample of it helps whoever extends the parser.
func unrecognised(cmd string, out []byte) string {
	sample := strings.TrimSpace(string(bytes.TrimSpace(out)))
	if len(sample) > 80 {
		sample = sample[:80]
	}
	if sample == "" {
		return clip(cmd + ": empty output")
	}
	return clip(cmd + ": unrecognised output: " + sample)
}

func ptr[T any](v T) *T { return &v }
