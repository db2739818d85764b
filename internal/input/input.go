// Package input is the one decoding and validation path for everything
// Cordon accepts from outside: REST bodies, console forms, POST /enroll,
// the agent's local socket and the agent channel. Each edge decodes with
// DecodeJSON (or reads a form) and checks its fields with the helpers
// here, so the edges cannot drift apart in what they accept.
//
// It imports only the standard library (a test enforces this): protocol,
// which the agent links, depends on it.
package input

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ErrInvalid matches every refusal of this package (errors.Is), so an
// edge maps all of them to one status (400) in one place.
var ErrInvalid = errors.New("invalid input")

// Error is a refused input, naming the field when there is one.
type Error struct {
	Field string
	Msg   string
}

func (e *Error) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return e.Field + ": " + e.Msg
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

// Errorf builds an *Error for field.
func Errorf(field, format string, args ...any) error {
	return &Error{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Invalid marks err as a refusal of the input (it keeps err's chain), for
// a Check method whose errors do not come from this package.
func Invalid(err error) error {
	if err == nil || errors.Is(err, ErrInvalid) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrInvalid, err)
}

// Checker is a decoded value that validates itself.
type Checker interface{ Check() error }

// MaxBody is the default largest JSON body an edge reads.
const MaxBody = 64 << 10

// DecodeJSON reads exactly one JSON document of at most maxBytes from r
// into v: unknown fields, trailing data and a second document are
// refused, as is invalid UTF-8 anywhere in the body (encoding/json would
// silently replace it with U+FFFD, altering what the sender said). Then v
// checks itself when it is a Checker.
func DecodeJSON(r io.Reader, v any, maxBytes int64) error {
	data, err := io.ReadAll(io.LimitReader(r, maxBytes+1))
	if err != nil {
		return Errorf("", "body unreadable: %v", err)
	}
	if int64(len(data)) > maxBytes {
		return Errorf("", "body larger than %d bytes", maxBytes)
	}
	return Unmarshal(data, v)
}

// Unmarshal is DecodeJSON over bytes already read.
func Unmarshal(data []byte, v any) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return Errorf("", "body is empty; send one JSON document")
	}
	if !utf8.Valid(data) {
		return Errorf("", "body is not valid UTF-8")
	}
	if err := checkEscapes(data); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return Errorf("", "invalid JSON body: %v", err)
	}
	// Anything after the document, a second document included, is
	// refused: the sender meant something we would otherwise ignore.
	if _, err := dec.Token(); err != io.EOF {
		return Errorf("", "invalid JSON body: data after the JSON document")
	}
	if c, ok := v.(Checker); ok {
		return Invalid(c.Check())
	}
	return nil
}

// checkEscapes refuses \u escapes of lone UTF-16 surrogates, which
// encoding/json turns into U+FFFD without a word.
func checkEscapes(data []byte) error {
	hex4 := func(i int) (rune, bool) {
		if i+6 > len(data) || data[i] != '\\' || data[i+1] != 'u' {
			return 0, false
		}
		n, err := strconv.ParseUint(string(data[i+2:i+6]), 16, 32)
		return rune(n), err == nil
	}
	for i := 0; i < len(data); i++ {
		if data[i] != '\\' {
			continue
		}
		if i+1 < len(data) && data[i+1] != 'u' {
			i++ // an escaped character, perhaps a backslash
			continue
		}
		r, ok := hex4(i)
		if !ok {
			continue // the JSON decoder reports the bad escape
		}
		switch {
		case r >= 0xD800 && r < 0xDC00:
			lo, ok := hex4(i + 6)
			if !ok || lo < 0xDC00 || lo > 0xDFFF {
				return Errorf("", "body has an unpaired UTF-16 surrogate escape")
			}
			i += 11
		case r >= 0xDC00 && r <= 0xDFFF:
			return Errorf("", "body has an unpaired UTF-16 surrogate escape")
		default:
			i += 5
		}
	}
	return nil
}

// Text checks a one-line text field: valid UTF-8, no control characters
// (U+0000–U+001F, U+007F–U+009F) and at most max bytes.
func Text(field, v string, max int) error { return text(field, v, max, false) }

// FreeText is Text for prose: newline and tab are allowed, and a carriage
// return only as part of CRLF (what browsers send from a textarea).
func FreeText(field, v string, max int) error { return text(field, v, max, true) }

func text(field, v string, max int, free bool) error {
	if len(v) > max {
		return Errorf(field, "longer than %d bytes", max)
	}
	if !utf8.ValidString(v) {
		return Errorf(field, "not valid UTF-8")
	}
	for i, r := range v {
		if !unicode.IsControl(r) {
			continue
		}
		if free && (r == '\n' || r == '\t' || r == '\r' && i+1 < len(v) && v[i+1] == '\n') {
			continue
		}
		return Errorf(field, "control character %U not allowed", r)
	}
	return nil
}

// RequiredText is Text that must not be empty or blank.
func RequiredText(field, v string, max int) error {
	if len(bytes.TrimSpace([]byte(v))) == 0 {
		return Errorf(field, "is required")
	}
	return Text(field, v, max)
}

// NamePattern is the one pattern for names: groups, profiles, anything
// that becomes a path segment or a label (INTERFACE.md).
const NamePattern = `^[a-z0-9][a-z0-9._-]{0,62}$`

var nameRE = regexp.MustCompile(NamePattern)

// Name checks v against NamePattern.
func Name(field, v string) error {
	if !nameRE.MatchString(v) {
		shown := v
		if len(shown) > 64 || !utf8.ValidString(shown) {
			shown = shown[:min(len(shown), 64)] + "…"
		}
		return Errorf(field, "must match %s (1 to 63 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit), got %q", NamePattern, shown)
	}
	return nil
}

// Range checks lo ≤ v ≤ hi, naming the range when it is not.
func Range[T cmp.Ordered](field string, v, lo, hi T) error {
	if v < lo || v > hi {
		return Errorf(field, "must be between %v and %v, got %v", lo, hi, v)
	}
	return nil
}

// Latitude checks an optional latitude (−90 to 90 degrees).
func Latitude(field string, v *float64) error {
	if v == nil {
		return nil
	}
	return Range(field, *v, -90, 90)
}

// Longitude checks an optional longitude (−180 to 180 degrees).
func Longitude(field string, v *float64) error {
	if v == nil {
		return nil
	}
	return Range(field, *v, -180, 180)
}

// First returns the first non-nil error, so a Check reads as a list.
func First(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// Texts checks every field of a map with Text, in a stable order so the
// same input always names the same field.
func Texts(fields map[string]string, max int) error { return texts(fields, max, false) }

// FreeTexts is Texts with FreeText.
func FreeTexts(fields map[string]string, max int) error { return texts(fields, max, true) }

func texts(fields map[string]string, max int, free bool) error {
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if err := text(k, fields[k], max, free); err != nil {
			return err
		}
	}
	return nil
}

// Printable makes text an edge composes from foreign output (a collector
// quoting a command's output in its reason) pass FreeText: invalid UTF-8
// and control characters other than newline and tab become '?', and
// carriage returns go. Never use it on what a peer sent: that is refused,
// not repaired.
func Printable(s string) string {
	s = strings.ToValidUTF8(s, "?")
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\r':
			return -1
		case r == '\n' || r == '\t' || !unicode.IsControl(r):
			return r
		}
		return '?'
	}, s)
}
