package apple

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"howett.net/plist"

	"github.com/cordon-mdm/cordon/profiles"
)

// counter returns deterministic UUIDs.
func counter() func() string {
	n := 0
	return func() string {
		n++
		return fmt.Sprintf("00000000-0000-4000-8000-%012d", n)
	}
}

// decode parses a rendered profile and requires it to be an XML plist.
func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var doc map[string]any
	format, err := plist.Unmarshal(b, &doc)
	if err != nil {
		t.Fatalf("decode: %v\n%s", err, b)
	}
	if format != plist.XMLFormat {
		t.Fatalf("format %s, want XML", plist.FormatNames[format])
	}
	return doc
}

// payloads returns the PayloadContent dictionaries of type typ.
func payloads(t *testing.T, doc map[string]any, typ string) []map[string]any {
	t.Helper()
	content, ok := doc["PayloadContent"].([]any)
	if !ok {
		t.Fatalf("PayloadContent is %T", doc["PayloadContent"])
	}
	var out []map[string]any
	for _, c := range content {
		d, ok := c.(map[string]any)
		if !ok {
			t.Fatalf("payload is %T", c)
		}
		if d["PayloadType"] == typ {
			out = append(out, d)
		}
	}
	return out
}

// integer reads a plist integer (decoded as uint64 or int64).
func integer(t *testing.T, d map[string]any, key string) int64 {
	t.Helper()
	switch v := d[key].(type) {
	case uint64:
		return int64(v)
	case int64:
		return v
	default:
		t.Fatalf("%s is %T (%v), want integer", key, d[key], d[key])
		return 0
	}
}

func boolean(t *testing.T, d map[string]any, key string) bool {
	t.Helper()
	v, ok := d[key].(bool)
	if !ok {
		t.Fatalf("%s is %T (%v), want boolean", key, d[key], d[key])
	}
	return v
}

func render(t *testing.T, p *profiles.Profile) map[string]any {
	t.Helper()
	b, err := MobileConfig(p, Options{Organization: "Example PD", UUID: counter()})
	if err != nil {
		t.Fatal(err)
	}
	return decode(t, b)
}

func parse(t *testing.T, doc string) *profiles.Profile {
	t.Helper()
	p, err := profiles.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBaseline(t *testing.T) {
	p, _ := profiles.Baseline()
	doc := render(t, p)

	for key, want := range map[string]any{
		"PayloadType":              "Configuration",
		"PayloadIdentifier":        DefaultIdentifier + "." + profiles.BaselineName,
		"PayloadDisplayName":       "Cordon: " + profiles.BaselineName,
		"PayloadDescription":       p.Description,
		"PayloadOrganization":      "Example PD",
		"PayloadRemovalDisallowed": true,
		"PayloadScope":             "System",
	} {
		if doc[key] != want {
			t.Errorf("%s = %#v, want %#v", key, doc[key], want)
		}
	}
	if v := integer(t, doc, "PayloadVersion"); v != 1 {
		t.Errorf("PayloadVersion = %d", v)
	}
	if doc["PayloadUUID"] == "" || doc["PayloadUUID"] == nil {
		t.Error("no top-level PayloadUUID")
	}

	pc := payloads(t, doc, "com.apple.mobiledevice.passwordpolicy")
	if len(pc) != 1 {
		t.Fatalf("%d passcode payloads, want 1", len(pc))
	}
	pass := pc[0]
	if !boolean(t, pass, "forcePIN") {
		t.Error("forcePIN false")
	}
	if boolean(t, pass, "allowSimple") {
		t.Error("allowSimple true")
	}
	if boolean(t, pass, "requireAlphanumeric") {
		t.Error("requireAlphanumeric true")
	}
	for key, want := range map[string]int64{"minLength": 6, "maxFailedAttempts": 10, "maxGracePeriod": 0, "PayloadVersion": 1} {
		if got := integer(t, pass, key); got != want {
			t.Errorf("%s = %d, want %d", key, got, want)
		}
	}
	// CJIS 5.5.5: at most 30 minutes; the baseline's 30 is rendered as
	// Apple's documented maximum, 15.
	if got := integer(t, pass, "maxInactivity"); got > 30 || got != 15 {
		t.Errorf("maxInactivity = %d, want 15", got)
	}

	rs := payloads(t, doc, "com.apple.applicationaccess")
	if len(rs) != 1 {
		t.Fatalf("%d restrictions payloads, want 1", len(rs))
	}
	if boolean(t, rs[0], "allowBluetoothModification") {
		t.Error("allowBluetoothModification true")
	}

	// Every payload, and the profile, has a UUID and a unique identifier.
	ids := map[string]bool{doc["PayloadIdentifier"].(string): true}
	uuids := map[string]bool{doc["PayloadUUID"].(string): true}
	for _, c := range doc["PayloadContent"].([]any) {
		d := c.(map[string]any)
		id, _ := d["PayloadIdentifier"].(string)
		u, _ := d["PayloadUUID"].(string)
		if id == "" || u == "" {
			t.Errorf("payload %v: PayloadIdentifier %q, PayloadUUID %q", d["PayloadType"], id, u)
		}
		if ids[id] || uuids[u] {
			t.Errorf("payload %v: identifier %q or UUID %q repeated", d["PayloadType"], id, u)
		}
		ids[id], uuids[u] = true, true
		if s, _ := d["PayloadDisplayName"].(string); s == "" {
			t.Errorf("payload %v: no PayloadDisplayName", d["PayloadType"])
		}
	}
}

func TestDeterministic(t *testing.T) {
	p, _ := profiles.Baseline()
	a, err := MobileConfig(p, Options{UUID: counter()})
	if err != nil {
		t.Fatal(err)
	}
	b, err := MobileConfig(p, Options{UUID: counter()})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatalf("two renders differ:\n%s\n---\n%s", a, b)
	}
}

func TestDefaultUUIDs(t *testing.T) {
	p, _ := profiles.Baseline()
	a, err := MobileConfig(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := MobileConfig(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	da, db := decode(t, a), decode(t, b)
	if da["PayloadUUID"] == db["PayloadUUID"] {
		t.Fatalf("default UUIDs repeat: %v", da["PayloadUUID"])
	}
}

func TestNoPasscode(t *testing.T) {
	p := parse(t, "name: laptops\ncontrols:\n  firewall:\n    required: true\n")
	if _, err := MobileConfig(p, Options{}); !errors.Is(err, ErrNoPasscode) {
		t.Fatalf("err = %v, want ErrNoPasscode", err)
	}
}

func TestInactivityRoundsToAtLeastOneMinute(t *testing.T) {
	for in, want := range map[string]int64{"90s": 1, "30s": 1, "5m59s": 5} {
		p := parse(t, "name: phones\ncontrols:\n  passcode: {min_length: 6, max_failed_attempts: 10, max_inactivity: "+in+"}\n")
		pc := payloads(t, render(t, p), "com.apple.mobiledevice.passwordpolicy")
		if len(pc) != 1 {
			t.Fatalf("%d passcode payloads", len(pc))
		}
		if got := integer(t, pc[0], "maxInactivity"); got != want {
			t.Errorf("%s: maxInactivity = %d, want %d", in, got, want)
		}
	}
}

func TestBluetooth(t *testing.T) {
	const pass = "  passcode: {min_length: 6, max_failed_attempts: 10, max_inactivity: 5m}\n"
	none := render(t, parse(t, "name: p\ncontrols:\n"+pass))
	if rs := payloads(t, none, "com.apple.applicationaccess"); len(rs) != 0 {
		t.Errorf("no bluetooth control, %d restrictions payloads", len(rs))
	}
	off := render(t, parse(t, "name: p\ncontrols:\n"+pass+"  bluetooth: {mode: off, enforcement: enforce}\n"))
	rs := payloads(t, off, "com.apple.applicationaccess")
	if len(rs) != 1 || boolean(t, rs[0], "allowBluetoothModification") {
		t.Errorf("mode off: restrictions %v", rs)
	}
	if n := len(off["PayloadContent"].([]any)); n != 2 {
		t.Errorf("mode off: %d payloads, want passcode and restrictions", n)
	}
}

func TestMinLengthBeyondApple(t *testing.T) {
	p := parse(t, "name: p\ncontrols:\n  passcode: {min_length: 20, max_failed_attempts: 10, max_inactivity: 5m}\n")
	if _, err := MobileConfig(p, Options{}); err == nil {
		t.Fatal("min_length 20 rendered; Apple allows at most 16")
	}
}
