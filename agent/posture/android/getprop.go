// Package android reads an Android device's posture. An agent built with
// GOOS=android runs under an app's uid and cannot reach the device-policy
// or Bluetooth APIs, so the posture comes from two places: system
// properties, which any process can list with getprop, and a host app
// (bound with gomobile) that reports what only Java APIs can read through
// Host. It builds on any OS so its tests run everywhere;
// posture/os_android.go wires it in.
package android

import (
	"strings"
)

// GetpropSource names where the property-derived sections come from.
const GetpropSource = "getprop"

// ParseGetprop reads the full dump printed by getprop with no arguments,
// one "[name]: [value]" per line. A value containing a newline spans
// lines and cannot be told apart from its neighbours reliably, so its
// lines are skipped. A name listed twice with different values is dropped:
// getprop lists each property once, so a second line can only come from
// a multi-line value that imitates one, and neither copy is trustworthy.
func ParseGetprop(out string) map[string]string {
	props := map[string]string{}
	conflict := map[string]bool{}
	inValue := false
	for line := range strings.SplitSeq(out, "\n") {
		line = strings.TrimSuffix(line, "\r")
		if inValue {
			// The rest of a multi-line value; its last line closes it.
			inValue = !strings.HasSuffix(line, "]")
			continue
		}
		name, value, ok, open := parsePropLine(line)
		if open {
			inValue = true
			continue
		}
		if !ok || conflict[name] {
			continue
		}
		if old, seen := props[name]; seen && old != value {
			delete(props, name)
			conflict[name] = true
			continue
		}
		props[name] = value
	}
	return props
}

// parsePropLine splits one line. open reports a value that starts on this
// line but does not end on it.
func parsePropLine(line string) (name, value string, ok, open bool) {
	rest, found := strings.CutPrefix(line, "[")
	if !found {
		return "", "", false, false
	}
	// Property names cannot contain ']', so the first "]: [" ends the name
	// even when the value contains one.
	name, value, found = strings.Cut(rest, "]: [")
	if !found || !validPropName(name) {
		return "", "", false, false
	}
	value, found = strings.CutSuffix(value, "]")
	if !found {
		return "", "", false, true
	}
	return name, value, true, false
}

// validPropName follows init's rule for property names: letters,
// digits and "._-:@".
func validPropName(name string) bool {
	if name == "" {
		return false
	}
	for _, c := range name {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.ContainsRune("._-:@", c):
		default:
			return false
		}
	}
	return true
}
