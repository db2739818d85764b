// Package flagconfig reads a YAML config file into a flag.FlagSet, so a
// binary's config file and its flags are one set of settings under one
// set of names: each top-level key is a flag's name, and a flag given on
// the command line wins over the file.
package flagconfig

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

// MaxSize bounds the file: a config is a page of settings, and a larger
// file is a mistake (or a pipe that never ends).
const MaxSize = 1 << 20

// ErrConfig marks every refusal of a config file.
var ErrConfig = errors.New("config")

// Load reads the file at path and applies it to fs with Apply.
func Load(fs *flag.FlagSet, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return err
	}
	if len(b) > MaxSize {
		return fmt.Errorf("%w: %s is larger than %d bytes", ErrConfig, path, MaxSize)
	}
	if err := Apply(fs, b); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// Apply sets the flags of fs named by the top-level keys of the YAML
// document b. It runs after fs.Parse: flags already set on the command
// line are left as they are. A key that names no flag stops it, naming
// the key, so a misspelt setting is never silently ignored. A list
// value sets a repeatable flag once per item.
func Apply(fs *flag.FlagSet, b []byte) error {
	settings, err := decode(b)
	if err != nil {
		return err
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for _, s := range settings {
		f := fs.Lookup(s.key)
		if f == nil || s.key == "config" {
			return fmt.Errorf("%w: unknown key %q (line %d): the keys are the flags of %s -h", ErrConfig, s.key, s.line, fs.Name())
		}
		if given[s.key] {
			continue
		}
		if len(s.values) > 1 && !repeatable(f) {
			return fmt.Errorf("%w: key %q (line %d) takes one value, not a list", ErrConfig, s.key, s.line)
		}
		for _, v := range s.values {
			if err := fs.Set(s.key, v); err != nil {
				return fmt.Errorf("%w: key %q (line %d): %v", ErrConfig, s.key, s.line, err)
			}
		}
	}
	return nil
}

type setting struct {
	key    string
	line   int
	values []string
}

// decode reads b as one YAML mapping of scalars or lists of scalars, in
// the file's order. Anything else (nesting, anchors into structures, a
// second document, a key given twice) is refused: the file maps onto
// flags, which are flat.
func decode(b []byte) ([]setting, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil // an empty file sets nothing
		}
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: more than one YAML document", ErrConfig)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, fmt.Errorf("%w: not a YAML mapping", ErrConfig)
	}
	m := doc.Content[0]
	if m.Kind == yaml.ScalarNode && m.Tag == "!!null" {
		return nil, nil
	}
	if m.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%w: the file must be a mapping of setting: value (line %d)", ErrConfig, m.Line)
	}
	seen := map[string]bool{}
	var out []setting
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Value == "" {
			return nil, fmt.Errorf("%w: line %d: a key must be a flag name", ErrConfig, k.Line)
		}
		name := strings.TrimPrefix(strings.TrimPrefix(k.Value, "-"), "-")
		if seen[name] {
			return nil, fmt.Errorf("%w: key %q given twice (line %d)", ErrConfig, name, k.Line)
		}
		seen[name] = true
		s := setting{key: name, line: k.Line}
		switch v.Kind {
		case yaml.ScalarNode:
			if v.Tag == "!!null" {
				continue // "key:" with nothing after it keeps the default
			}
			s.values = []string{v.Value}
		case yaml.SequenceNode:
			for _, item := range v.Content {
				if item.Kind != yaml.ScalarNode {
					return nil, fmt.Errorf("%w: key %q (line %d): list items must be plain values", ErrConfig, name, item.Line)
				}
				s.values = append(s.values, item.Value)
			}
		default:
			return nil, fmt.Errorf("%w: key %q (line %d): the value must be a plain value or a list", ErrConfig, name, v.Line)
		}
		out = append(out, s)
	}
	return out, nil
}

// repeatable tells a flag that collects values (its Set appends) from
// one whose second Set would silently replace the first: a flag.Value
// says it collects by having IsList() return true.
func repeatable(f *flag.Flag) bool {
	type list interface{ IsList() bool }
	if l, ok := f.Value.(list); ok {
		return l.IsList()
	}
	return false
}
