package profiles

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/cordon-mdm/cordon/protocol"

	"github.com/cordon-mdm/cordon/internal/input"
)

// Error is a profile that does not validate: which field, on which line
// of the document, and why.
type Error struct {
	Field string
	Line  int
	Msg   string
}

func (e *Error) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	}
	return fmt.Sprintf("line %d: %s: %s", e.Line, e.Field, e.Msg)
}

// MaxDocument bounds a profile document.
const MaxDocument = 256 << 10

// Parse reads a profile in YAML or JSON (JSON is YAML here) and validates
// it. Unknown fields are errors: a misspelt control must not silently
// turn into "not checked". It is what a new document (PUT) goes through:
// fields that were replaced are refused with the names of their
// replacements.
func Parse(doc []byte) (*Profile, error) { return parse(doc, false) }

// ParseStored is Parse for a document saved by an earlier version: a
// replaced field is read into its replacement rather than refused, so an
// upgrade never leaves devices evaluated against nothing.
// security_updates_within: W becomes each severity window capped at W.
func ParseStored(doc []byte) (*Profile, error) { return parse(doc, true) }

func parse(doc []byte, stored bool) (*Profile, error) {
	if len(doc) > MaxDocument {
		return nil, &Error{Line: 1, Msg: fmt.Sprintf("document larger than %d bytes", MaxDocument)}
	}
	var root yaml.Node
	if err := yaml.Unmarshal(doc, &root); err != nil {
		return nil, syntaxError(err)
	}
	if len(root.Content) == 0 {
		return nil, &Error{Line: 1, Msg: "empty document"}
	}
	var p Profile
	dec := yaml.NewDecoder(bytes.NewReader(doc))
	dec.KnownFields(true)
	if err := dec.Decode(&p); err != nil {
		return nil, decodeError(err, root.Content[0])
	}
	if err := p.validate(root.Content[0], stored); err != nil {
		return nil, err
	}
	return &p, nil
}

var lineRE = regexp.MustCompile(`line (\d+): (.*)`)

func syntaxError(err error) error {
	if m := lineRE.FindStringSubmatch(err.Error()); m != nil {
		n, _ := strconv.Atoi(m[1])
		return &Error{Line: n, Msg: m[2]}
	}
	return &Error{Line: 1, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
}

// fieldRE picks the field out of yaml's "field x not found in type y".
var fieldRE = regexp.MustCompile(`field (\S+) not found in type \S+`)

func decodeError(err error, root *yaml.Node) error {
	var pe *Error
	if errors.As(err, &pe) {
		pe.Field = fieldAt(root, pe.Line)
		return pe
	}
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		first := te.Errors[0]
		if m := lineRE.FindStringSubmatch(first); m != nil {
			n, _ := strconv.Atoi(m[1])
			msg := m[2]
			if f := fieldRE.FindStringSubmatch(msg); f != nil {
				return &Error{Field: f[1], Line: n, Msg: "unknown field"}
			}
			return &Error{Field: fieldAt(root, n), Line: n, Msg: msg}
		}
	}
	return syntaxError(err)
}

// fieldAt names the key on line n, for type errors yaml reports by line.
func fieldAt(n *yaml.Node, line int) string {
	var walk func(n *yaml.Node, path string) string
	walk = func(n *yaml.Node, path string) string {
		if n.Kind != yaml.MappingNode {
			return ""
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := strings.TrimPrefix(path+"."+k.Value, ".")
			if k.Line == line || v.Line == line && v.Kind == yaml.ScalarNode {
				return p
			}
			if f := walk(v, p); f != "" {
				return f
			}
		}
		return ""
	}
	return walk(n, "")
}

// lineOf finds the line of a dotted field path; the nearest existing
// ancestor's line when the field itself is absent.
func lineOf(n *yaml.Node, path string) int {
	line := n.Line
	for _, part := range strings.Split(path, ".") {
		if n.Kind != yaml.MappingNode {
			return line
		}
		found := false
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == part {
				line, n, found = n.Content[i].Line, n.Content[i+1], true
				break
			}
		}
		if !found {
			return line
		}
	}
	return line
}

// nameRE is the one name pattern of every edge (INTERFACE.md).
var nameRE = regexp.MustCompile(input.NamePattern)

func (p *Profile) validate(root *yaml.Node, stored bool) error {
	bad := func(field, format string, args ...any) error {
		return &Error{Field: field, Line: lineOf(root, field), Msg: fmt.Sprintf(format, args...)}
	}
	if !nameRE.MatchString(p.Name) {
		return bad("name", "must match %s (1 to 63 lowercase letters, digits, '.', '_' or '-'), got %q", input.NamePattern, p.Name)
	}
	c := p.Controls
	if sl := c.SessionLock; sl != nil {
		if sl.Required && (sl.MaxTimeout <= 0 || sl.MaxTimeout.D() > 30*time.Minute) {
			return bad("controls.session_lock.max_timeout", "must be more than 0 and at most 30m (CJIS 5.5.5), got %s", sl.MaxTimeout)
		}
	}
	if pt := c.Patches; pt != nil {
		if old := pt.SecurityUpdatesWithin; old != nil {
			if !stored {
				return bad("controls.patches.security_updates_within", "replaced by the SI-2 windows by severity: "+
					"critical_within, high_within, medium_within, low_within (defaults 15d, 30d, 60d, 90d)")
			}
			if *old <= 0 {
				return bad("controls.patches.security_updates_within", "must be more than 0, got %s", *old)
			}
			for sev, w := range map[string]*Duration{"critical": &pt.CriticalWithin, "high": &pt.HighWithin, "medium": &pt.MediumWithin, "low": &pt.LowWithin} {
				if *w == 0 {
					*w = min(PolicyWindows[sev], *old)
				}
			}
			pt.SecurityUpdatesWithin = nil
		}
		for _, sev := range []string{"critical", "high", "medium", "low"} {
			w := map[string]Duration{"critical": pt.CriticalWithin, "high": pt.HighWithin, "medium": pt.MediumWithin, "low": pt.LowWithin}[sev]
			if w < 0 || w > PolicyWindows[sev] {
				return bad("controls.patches."+sev+"_within", "must be more than 0 and at most %s (CJIS 5.10.4.1 [SI-2]), got %s", PolicyWindows[sev], w)
			}
		}
		if pt.AndroidPatchMaxAge < 0 {
			return bad("controls.patches.android_patch_max_age", "must not be negative")
		}
		for os, v := range pt.MinOSVersion {
			if _, ok := versionParts(v); !ok {
				return bad("controls.patches.min_os_version."+os, "%q is not a dotted version number", v)
			}
		}
	}
	if bt := c.Bluetooth; bt != nil {
		if bt.Mode != BluetoothAllowList && bt.Mode != BluetoothOff {
			return bad("controls.bluetooth.mode", "must be %q or %q, got %q", BluetoothAllowList, BluetoothOff, bt.Mode)
		}
		if bt.Enforcement != EnforceBlock && bt.Enforcement != EnforceMonitor {
			return bad("controls.bluetooth.enforcement", "must be %q or %q, got %q", EnforceBlock, EnforceMonitor, bt.Enforcement)
		}
	}
	if k := c.KeyProtection; k != nil && k.RequireLevel != "" && protocol.KeyProtectionRank(k.RequireLevel) == 0 {
		return bad("controls.key_protection.require_level", "must be %q, %q or %q, got %q",
			protocol.KeySoftware, protocol.KeyTPMUnverified, protocol.KeyTPMAttested, k.RequireLevel)
	}
	if pc := c.Passcode; pc != nil {
		if pc.MinLength < 6 || pc.MinLength > 64 {
			return bad("controls.passcode.min_length", "must be 6 to 64 (CJIS 5.6.2.1.2), got %d", pc.MinLength)
		}
		if pc.MaxFailedAttempts < 2 || pc.MaxFailedAttempts > 10 {
			return bad("controls.passcode.max_failed_attempts", "must be 2 to 10 (CJIS 5.13.2 (k)), got %d", pc.MaxFailedAttempts)
		}
		if pc.MaxInactivity <= 0 || pc.MaxInactivity.D() > 30*time.Minute {
			return bad("controls.passcode.max_inactivity", "must be more than 0 and at most 30m, got %s", pc.MaxInactivity)
		}
	}
	var am *Required
	if a := c.Antimalware; a != nil {
		am = &a.Required
		if a.MaxSignatureAge < 0 {
			return bad("controls.antimalware.max_signature_age", "must not be negative")
		}
		if a.MaxSignatureAgeByPlatform != nil && len(a.MaxSignatureAgeByPlatform) == 0 {
			return bad("controls.antimalware.max_signature_age_by_platform", "must name at least one platform (leave it out to use max_signature_age everywhere)")
		}
		for _, pl := range slices.Sorted(maps.Keys(a.MaxSignatureAgeByPlatform)) {
			if !slices.Contains(Platforms, pl) {
				return bad("controls.antimalware.max_signature_age_by_platform."+pl, "%q is not a platform; use %s", pl, strings.Join(Platforms, ", "))
			}
			if d := a.MaxSignatureAgeByPlatform[pl]; d <= 0 {
				return bad("controls.antimalware.max_signature_age_by_platform."+pl, "must be more than 0, got %s", d)
			}
		}
	}
	var apps *Required
	if ac := c.ApplicationControl; ac != nil {
		// Grace and platforms are checked with the other controls'.
		apps = &Required{Grace: ac.Grace, Platforms: ac.Platforms}
		if err := ac.validate(root); err != nil {
			return err
		}
	}
	for field, r := range map[string]*Required{"disk_encryption": c.DiskEncryption, "firewall": c.Firewall,
		"antimalware": am, "not_rooted": c.NotRooted, "verified_boot": c.VerifiedBoot, "application_control": apps} {
		if r == nil {
			continue
		}
		if r.Grace < 0 {
			return bad("controls."+field+".grace", "must not be negative")
		}
		if r.Platforms != nil && len(r.Platforms) == 0 {
			return bad("controls."+field+".platforms", "must name at least one platform (leave it out to apply everywhere)")
		}
		for _, pl := range r.Platforms {
			if !slices.Contains(Platforms, pl) {
				return bad("controls."+field+".platforms", "%q is not a platform; use %s", pl, strings.Join(Platforms, ", "))
			}
		}
	}
	return nil
}

// bundleIDRE is a reverse-DNS bundle identifier of at least two labels,
// or a prefix of one ending in ".*". Apple allows letters, digits, '-'
// and '.'; '_' is accepted too, as older Mac apps use it.
var bundleIDRE = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.([A-Za-z0-9_-]+|\*)$`)

func (a *ApplicationControl) validate(root *yaml.Node) error {
	const at = "controls.application_control"
	bad := func(field string, line int, format string, args ...any) error {
		if line == 0 {
			line = lineOf(root, field)
		}
		return &Error{Field: field, Line: line, Msg: fmt.Sprintf(format, args...)}
	}
	if a.Mode != AppsAllow && a.Mode != AppsDeny {
		return bad(at+".mode", 0, "must be %q or %q, got %q", AppsAllow, AppsDeny, a.Mode)
	}
	// An empty allow-list would make every installed app a finding, and
	// an empty deny-list checks nothing: either is a mistake.
	switch n := len(a.BundleIDs); {
	case n == 0:
		return bad(at+".bundle_ids", 0, "must name at least one bundle identifier (leave the control out to check none)")
	case n > MaxBundleIDs:
		return bad(at+".bundle_ids", 0, "at most %d bundle identifiers, got %d (a prefix such as com.example.* covers many)", MaxBundleIDs, n)
	}
	items := itemLines(root, at+".bundle_ids")
	seen := map[string]int{}
	for i, id := range a.BundleIDs {
		line := 0
		if i < len(items) {
			line = items[i]
		}
		if len(id) > MaxBundleIDLength || !bundleIDRE.MatchString(id) {
			return bad(at+".bundle_ids", line, "%q is not a bundle identifier (reverse DNS such as com.example.chat, "+
				"or a prefix such as com.example.*; letters, digits, '-', '_' and '.', at most %d bytes)", input.Clip(id, 64), MaxBundleIDLength)
		}
		k := strings.ToLower(id)
		if j, dup := seen[k]; dup {
			return bad(at+".bundle_ids", line, "%q is listed twice (bundle identifiers ignore case; first as %q)", id, a.BundleIDs[j])
		}
		seen[k] = i
	}
	return nil
}

// itemLines are the lines of the items of the sequence at a dotted path.
func itemLines(n *yaml.Node, path string) []int {
	for _, part := range strings.Split(path, ".") {
		if n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == part {
				next = n.Content[i+1]
			}
		}
		if next == nil {
			return nil
		}
		n = next
	}
	var out []int
	for _, c := range n.Content {
		out = append(out, c.Line)
	}
	return out
}

// versionParts splits "10.0.19045" into numbers.
func versionParts(v string) ([]int, bool) {
	if v == "" {
		return nil, false
	}
	var out []int
	for _, s := range strings.Split(v, ".") {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return nil, false
		}
		out = append(out, n)
	}
	return out, true
}

// VersionAtLeast reports whether version have is at least want; a have
// that is not a dotted number is not (it cannot be shown to be).
func VersionAtLeast(have, want string) bool {
	w, _ := versionParts(want)
	var h []int
	for _, s := range strings.Split(strings.Fields(have + " ")[0], ".") {
		n, err := strconv.Atoi(s)
		if err != nil {
			break
		}
		h = append(h, n)
	}
	if len(h) == 0 {
		return false
	}
	for i := range max(len(h), len(w)) {
		var a, b int
		if i < len(h) {
			a = h[i]
		}
		if i < len(w) {
			b = w[i]
		}
		if a != b {
			return a > b
		}
	}
	return true
}

// MaxText bounds every string of a profile document (names, durations,
// the description).
const MaxText = 1024

// CheckText holds a profile document to the input rules before it is
// parsed or stored: exactly one document (a JSON document is decoded as
// strictly as every other JSON body), and every key and string valid text
// of at most MaxText bytes, so that an escape such as "\u0000" cannot
// smuggle a control character in.
func CheckText(doc []byte) error {
	if t := bytes.TrimSpace(doc); len(t) > 0 && t[0] == '{' {
		var v any
		if err := input.Unmarshal(doc, &v); err != nil {
			return err
		}
	}
	dec := yaml.NewDecoder(bytes.NewReader(doc))
	var v any
	if err := dec.Decode(&v); err != nil {
		return input.Errorf("document", "not YAML or JSON: %v", err)
	}
	var extra any
	if err := dec.Decode(&extra); err == nil {
		return input.Errorf("document", "more than one document")
	}
	return walkText("document", v)
}

func walkText(at string, v any) error {
	switch x := v.(type) {
	case string:
		return input.FreeText(at, x, MaxText)
	case map[string]any:
		for k, e := range x {
			if err := input.Text(at+" key", k, MaxText); err != nil {
				return err
			}
			if err := walkText(at+"."+k, e); err != nil {
				return err
			}
		}
	case []any:
		for i, e := range x {
			if err := walkText(fmt.Sprintf("%s[%d]", at, i), e); err != nil {
				return err
			}
		}
	}
	return nil
}
