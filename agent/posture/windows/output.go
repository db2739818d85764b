// Package windows reads a Windows machine's posture. Files without a build
// tag decode what the system returns (WTS buffers, registry values,
// PowerShell JSON) so that they are tested on any build host; the
// *_windows.go files make the calls.
//
// PowerShell is used where the only interface is WMI/CIM or COM, because
// the agent is built with CGO_ENABLED=0 and carries no COM binding.
package windows

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/cordon-mdm/cordon/internal/input"
)

// Output is what one PowerShell command produced.
type Output struct {
	Stdout []byte
	Stderr []byte
	Err    error // starting it, its exit status or its timeout
}

// Value is one registry value as read. Absence is a fact the OS gives a
// meaning to, so it is kept apart from a read that failed.
type Value[T any] struct {
	V       T
	Present bool
	Err     string // why it could not be read; empty when read or absent
}

// Key is whether a registry key exists.
type Key struct {
	Exists bool
	Err    string // why existence could not be told
}

// maxReason keeps a reason well inside the report's 512-byte text limit
// even after a field name is prefixed.
const maxReason = 300

// failure says why o carries nothing to parse, or "" when it does.
func (o Output) failure(what string) string {
	detail := firstLine(o.Stderr)
	switch {
	case o.Err != nil && detail != "":
		return clip(fmt.Sprintf("%s failed: %v: %s", what, o.Err, explain(detail)))
	case o.Err != nil:
		return clip(fmt.Sprintf("%s failed: %v", what, o.Err))
	case len(bytes.TrimSpace(trimBOM(o.Stdout))) == 0 && detail != "":
		return clip(fmt.Sprintf("%s printed nothing: %s", what, explain(detail)))
	case len(bytes.TrimSpace(trimBOM(o.Stdout))) == 0:
		return what + " printed nothing"
	}
	return ""
}

// explain names the usual causes, since the raw CIM messages do not say
// what to do about them.
func explain(stderr string) string {
	l := strings.ToLower(stderr)
	switch {
	case strings.Contains(l, "access denied") || strings.Contains(l, "access is denied") ||
		strings.Contains(l, "0x80041003") || strings.Contains(l, "0x80070005"):
		return "access denied (the agent must run as LocalSystem or an administrator): " + stderr
	case strings.Contains(l, "invalid namespace") || strings.Contains(l, "0x8004100e"):
		return "WMI namespace missing on this edition: " + stderr
	case strings.Contains(l, "invalid class") || strings.Contains(l, "0x80041010"):
		return "WMI class missing on this edition: " + stderr
	}
	return stderr
}

func firstLine(b []byte) string {
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			return l
		}
	}
	return ""
}

func clip(s string) string {
	s = input.Printable(s) // output quoted here may hold anything
	if len(s) <= maxReason {
		return s
	}
	return input.Clip(s, maxReason) + "…"
}

// trimBOM drops the byte-order mark some PowerShell hosts print when the
// console encoding is UTF-8.
func trimBOM(b []byte) []byte { return bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")) }

// jsonList splits ConvertTo-Json output into its items. ConvertTo-Json
// prints a lone object instead of a one-item array, nothing for no items,
// and under Windows PowerShell 5.1 sometimes wraps an array as
// {"value": [...], "Count": n}; all of those mean a list here.
func jsonList(b []byte) ([]json.RawMessage, error) {
	b = bytes.TrimSpace(trimBOM(b))
	if len(b) == 0 || bytes.Equal(b, []byte("null")) {
		return nil, nil
	}
	switch b[0] {
	case '[':
		var l []json.RawMessage
		if err := json.Unmarshal(b, &l); err != nil {
			return nil, err
		}
		// Nested arrays do not come out of Select-Object; a bare null item
		// is an empty pipeline slot and carries nothing.
		out := l[:0]
		for _, it := range l {
			if !bytes.Equal(bytes.TrimSpace(it), []byte("null")) {
				out = append(out, it)
			}
		}
		return out, nil
	case '{':
		var w struct {
			Value *json.RawMessage `json:"value"`
			Count *json.Number     `json:"Count"`
		}
		if err := json.Unmarshal(b, &w); err != nil {
			return nil, err
		}
		if w.Value != nil && w.Count != nil {
			return jsonList(*w.Value)
		}
		return []json.RawMessage{json.RawMessage(b)}, nil
	}
	return nil, errors.New("neither a JSON object nor an array")
}

// flexBool reads the shapes PowerShell gives a boolean: true/false, a
// GpoBoolean or other enum as 0/1, or "True"/"False". Anything else is
// kept as bad rather than failing the whole document.
type flexBool struct {
	v, set, bad bool
	raw         string
}

func (f *flexBool) UnmarshalJSON(b []byte) error {
	s := strings.TrimSpace(string(b))
	f.raw = clip(s)
	if s == "null" {
		return nil
	}
	if uq, err := strconv.Unquote(s); err == nil {
		s = uq
	}
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "1":
		f.v, f.set = true, true
	case "false", "0":
		f.v, f.set = false, true
	default:
		f.bad = true
	}
	return nil
}

// flexInt reads an integer printed as a number or as a string of digits.
type flexInt struct {
	v        int64
	set, bad bool
	raw      string
}

func (f *flexInt) UnmarshalJSON(b []byte) error {
	s := strings.TrimSpace(string(b))
	f.raw = clip(s)
	if s == "null" {
		return nil
	}
	if uq, err := strconv.Unquote(s); err == nil {
		s = strings.TrimSpace(uq)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		f.bad = true
		return nil
	}
	f.v, f.set = n, true
	return nil
}

// flexStrings reads a property that ConvertTo-Json prints as null, one
// string, or an array of strings depending on how many values it had.
type flexStrings []string

func (f *flexStrings) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*f = nil
		return nil
	}
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*f = flexStrings{one}
		return nil
	}
	var many []*string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*f = nil
	for _, s := range many {
		if s != nil {
			*f = append(*f, *s)
		}
	}
	return nil
}

func boolPtr(b bool) *bool    { return &b }
func int64Ptr(n int64) *int64 { return &n }
func intPtr(n int) *int       { return &n }
