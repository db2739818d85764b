package macos

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// maxPlistDepth bounds nesting so that hostile or corrupt input cannot
// exhaust the stack; ioreg -d 4 output nests about a dozen levels.
const maxPlistDepth = 64

// DecodePlist decodes an XML property list (what `ioreg -a` and
// `system_profiler -xml` print) into Go values: map[string]any for
// <dict>, []any for <array>, string, int64 (uint64 above MaxInt64),
// float64, bool, time.Time for <date> and []byte for <data>.
//
// It is written here rather than taken from a module because the agent
// adds no dependencies, and the subset ioreg emits is small.
func DecodePlist(b []byte) (any, error) {
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = true
	start, err := nextElement(d)
	if err != nil {
		return nil, fmt.Errorf("plist: %w", err)
	}
	if start == nil || start.Name.Local != "plist" {
		return nil, errors.New("plist: no <plist> element")
	}
	inner, err := nextElement(d)
	if err != nil {
		return nil, fmt.Errorf("plist: %w", err)
	}
	if inner == nil {
		return nil, errors.New("plist: empty <plist>")
	}
	v, err := decodeValue(d, *inner, 0)
	if err != nil {
		return nil, fmt.Errorf("plist: %w", err)
	}
	end, err := nextElement(d)
	if err != nil {
		return nil, fmt.Errorf("plist: %w", err)
	}
	if end != nil {
		return nil, fmt.Errorf("plist: more than one value in <plist> (<%s>)", end.Name.Local)
	}
	return v, nil
}

// nextElement skips text, comments and directives to the next element:
// it returns the start element, or nil at the parent's end element.
func nextElement(d *xml.Decoder) (*xml.StartElement, error) {
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			return &t, nil
		case xml.EndElement:
			return nil, nil
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				return nil, fmt.Errorf("unexpected text %.20q", t)
			}
		}
	}
}

// text reads the character data of a leaf element up to its end.
func text(d *xml.Decoder, name string) (string, error) {
	var sb strings.Builder
	for {
		tok, err := d.Token()
		if err != nil {
			return "", err
		}
		switch t := tok.(type) {
		case xml.CharData:
			sb.Write(t)
		case xml.EndElement:
			return sb.String(), nil
		case xml.StartElement:
			return "", fmt.Errorf("<%s> inside <%s>", t.Name.Local, name)
		}
	}
}

func decodeValue(d *xml.Decoder, se xml.StartElement, depth int) (any, error) {
	if depth > maxPlistDepth {
		return nil, errors.New("nested too deeply")
	}
	name := se.Name.Local
	switch name {
	case "dict":
		m := map[string]any{}
		for {
			k, err := nextElement(d)
			if err != nil {
				return nil, err
			}
			if k == nil {
				return m, nil
			}
			if k.Name.Local != "key" {
				return nil, fmt.Errorf("<%s> where a <key> belongs", k.Name.Local)
			}
			key, err := text(d, "key")
			if err != nil {
				return nil, err
			}
			ve, err := nextElement(d)
			if err != nil {
				return nil, err
			}
			if ve == nil {
				return nil, fmt.Errorf("key %.40q has no value", key)
			}
			v, err := decodeValue(d, *ve, depth+1)
			if err != nil {
				return nil, err
			}
			m[key] = v
		}
	case "array":
		a := []any{}
		for {
			ve, err := nextElement(d)
			if err != nil {
				return nil, err
			}
			if ve == nil {
				return a, nil
			}
			v, err := decodeValue(d, *ve, depth+1)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
	}
	s, err := text(d, name)
	if err != nil {
		return nil, err
	}
	switch name {
	case "string":
		return s, nil
	case "integer":
		return parsePlistInt(strings.TrimSpace(s))
	case "real":
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return nil, fmt.Errorf("bad <real> %.20q", s)
		}
		if math.IsNaN(f) {
			return nil, errors.New("<real> is NaN")
		}
		return f, nil
	case "true", "false":
		if strings.TrimSpace(s) != "" {
			return nil, fmt.Errorf("text inside <%s/>", name)
		}
		return name == "true", nil
	case "date":
		t, err := time.Parse(time.RFC3339, strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("bad <date> %.30q", s)
		}
		return t, nil
	case "data":
		clean := strings.Map(func(r rune) rune {
			if r == ' ' || r == '\t' || r == '\n' || r == '\r' {
				return -1
			}
			return r
		}, s)
		b, err := base64.StdEncoding.DecodeString(clean)
		if err != nil {
			return nil, errors.New("bad <data>")
		}
		return b, nil
	}
	return nil, fmt.Errorf("unknown element <%s>", name)
}

// parsePlistInt accepts what CoreFoundation writes: decimal, possibly
// negative, and unsigned 64-bit values beyond int64.
func parsePlistInt(s string) (any, error) {
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return i, nil
	}
	if u, err := strconv.ParseUint(s, 10, 64); err == nil {
		return u, nil
	}
	if h, ok := strings.CutPrefix(s, "0x"); ok {
		if u, err := strconv.ParseUint(h, 16, 64); err == nil {
			if u <= math.MaxInt64 {
				return int64(u), nil
			}
			return u, nil
		}
	}
	return nil, fmt.Errorf("bad <integer> %.30q", s)
}

// findKey walks v depth-first and returns the first dict value stored
// under key, with the dict holding it. ioreg nests the entry it was asked
// for under its parents' IORegistryEntryChildren, at a depth that varies
// between machines, so a search is sturdier than a path.
func findKey(v any, key string, depth int) (value any, holder map[string]any, ok bool) {
	if depth > maxPlistDepth {
		return nil, nil, false
	}
	switch t := v.(type) {
	case map[string]any:
		if x, found := t[key]; found {
			return x, t, true
		}
		// Visit children in a fixed order so that the answer does not
		// depend on map iteration.
		if c, found := t["IORegistryEntryChildren"]; found {
			if x, h, found := findKey(c, key, depth+1); found {
				return x, h, true
			}
		}
	case []any:
		for _, e := range t {
			if x, h, found := findKey(e, key, depth+1); found {
				return x, h, true
			}
		}
	}
	return nil, nil, false
}
