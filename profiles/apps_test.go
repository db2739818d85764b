package profiles

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestApplicationControlParses(t *testing.T) {
	p, err := Parse([]byte("name: p\ncontrols:\n  application_control:\n    mode: deny\n    bundle_ids: [com.example.chat, org.example.*]\n    platforms: [ios, ipados, macos]\n    grace: 24h\n"))
	if err != nil {
		t.Fatal(err)
	}
	ac := p.Controls.ApplicationControl
	if ac.Mode != AppsDeny || len(ac.BundleIDs) != 2 || ac.Grace.D() != 24*time.Hour {
		t.Fatalf("parsed %+v", ac)
	}
	for id, denied := range map[string]bool{"com.example.chat": true, "COM.Example.Chat": true, "com.example.chatter": false,
		"org.example.game": true, "org.example": false, "org.examples.x": false, "com.apple.mobilesafari": false} {
		if got := !ac.Authorized(id); got != denied {
			t.Errorf("deny-list: %s denied %v, want %v", id, got, denied)
		}
	}
	for platform, want := range map[string]bool{"ios": true, "ipados": true, "ios/arm64": true, "macos": true,
		"darwin/arm64": false, "linux/amd64": false, "android/arm64": false} {
		if got := ac.AppliesTo(platform); got != want {
			t.Errorf("applies to %s: %v, want %v", platform, got, want)
		}
	}
	allow := &ApplicationControl{Mode: AppsAllow, BundleIDs: []string{"com.apple.*", "gov.agency.cad"}}
	for id, ok := range map[string]bool{"com.apple.mobilesafari": true, "gov.agency.CAD": true, "com.example.chat": false, "com.applesauce.x": false} {
		if got := allow.Authorized(id); got != ok {
			t.Errorf("allow-list: %s authorized %v, want %v", id, got, ok)
		}
	}
	if _, doc := Baseline(); !strings.Contains(string(doc), "# application_control:") {
		t.Error("the baseline does not explain why it leaves application_control out")
	} else if b, _ := Baseline(); b.Controls.ApplicationControl != nil {
		t.Error("the baseline enables an application list; which apps are authorized is the agency's to say")
	}
}

func TestApplicationControlRefused(t *testing.T) {
	const head = "name: p\ncontrols:\n  application_control:\n"
	const at = "controls.application_control"
	many := make([]string, MaxBundleIDs+1)
	for i := range many {
		many[i] = fmt.Sprintf("com.example.app%d", i)
	}
	for name, c := range map[string]struct {
		doc, field, msg string
		line            int
	}{
		"no mode":        {head + "    bundle_ids: [com.example.chat]\n", at + ".mode", `must be "allow" or "deny"`, 3},
		"bad mode":       {head + "    mode: block\n    bundle_ids: [com.example.chat]\n", at + ".mode", `got "block"`, 4},
		"empty allow":    {head + "    mode: allow\n    bundle_ids: []\n", at + ".bundle_ids", "at least one", 5},
		"empty deny":     {head + "    mode: deny\n", at + ".bundle_ids", "at least one", 3},
		"not reverse":    {head + "    mode: deny\n    bundle_ids:\n      - com.example.chat\n      - chat\n", at + ".bundle_ids", `"chat" is not a bundle identifier`, 7},
		"space":          {head + "    mode: deny\n    bundle_ids: [\"com.example.my app\"]\n", at + ".bundle_ids", "not a bundle identifier", 5},
		"inner wildcard": {head + "    mode: deny\n    bundle_ids: [com.*.chat]\n", at + ".bundle_ids", "not a bundle identifier", 5},
		"too long":       {head + "    mode: deny\n    bundle_ids: [com." + strings.Repeat("x", MaxBundleIDLength) + "]\n", at + ".bundle_ids", "at most 255 bytes", 5},
		"too many":       {head + "    mode: allow\n    bundle_ids: [" + strings.Join(many, ", ") + "]\n", at + ".bundle_ids", "at most 1024", 5},
		"duplicate": {head + "    mode: allow\n    bundle_ids:\n      - com.example.chat\n      - gov.agency.cad\n      - com.Example.Chat\n",
			at + ".bundle_ids", "listed twice", 8},
		"negative grace": {head + "    mode: deny\n    bundle_ids: [com.example.chat]\n    grace: -1h\n", at + ".grace", "", 6},
		"bad platform":   {head + "    mode: deny\n    bundle_ids: [com.example.chat]\n    platforms: [osx]\n", at + ".platforms", `"osx" is not a platform`, 6},
		"no platforms":   {head + "    mode: deny\n    bundle_ids: [com.example.chat]\n    platforms: []\n", at + ".platforms", "at least one platform", 6},
		"unknown field":  {head + "    mode: deny\n    bundle_ids: [com.example.chat]\n    apps: [x]\n", "apps", "unknown field", 6},
	} {
		_, err := Parse([]byte(c.doc))
		var pe *Error
		if !errors.As(err, &pe) {
			t.Errorf("%s: %v, want a profiles.Error", name, err)
			continue
		}
		if pe.Field != c.field || pe.Line != c.line || !strings.Contains(pe.Msg, c.msg) {
			t.Errorf("%s: %q (field %q line %d), want field %q line %d saying %q", name, err, pe.Field, pe.Line, c.field, c.line, c.msg)
		}
	}
}

// TestSchemaBundleIDsMatchValidation: the schema's bounds and pattern
// for bundle identifiers are the ones Parse enforces.
func TestSchemaBundleIDsMatchValidation(t *testing.T) {
	var schema struct {
		Properties struct {
			Controls struct {
				Properties struct {
					ApplicationControl struct {
						Required   []string `json:"required"`
						Properties struct {
							Mode      struct{ Enum []string }
							BundleIDs struct {
								MinItems int `json:"minItems"`
								MaxItems int `json:"maxItems"`
								Items    struct {
									MaxLength int    `json:"maxLength"`
									Pattern   string `json:"pattern"`
								}
							} `json:"bundle_ids"`
						}
					} `json:"application_control"`
				}
			}
		}
	}
	if err := json.Unmarshal(Schema(), &schema); err != nil {
		t.Fatal(err)
	}
	ac := schema.Properties.Controls.Properties.ApplicationControl
	b := ac.Properties.BundleIDs
	if b.MinItems != 1 || b.MaxItems != MaxBundleIDs || b.Items.MaxLength != MaxBundleIDLength || b.Items.Pattern != bundleIDRE.String() {
		t.Errorf("schema bundle_ids %+v; Parse: 1 to %d, at most %d bytes, %s", b, MaxBundleIDs, MaxBundleIDLength, bundleIDRE)
	}
	if m := ac.Properties.Mode.Enum; len(m) != 2 || m[0] != AppsAllow || m[1] != AppsDeny || strings.Join(ac.Required, ",") != "mode,bundle_ids" {
		t.Errorf("schema mode %v, required %v", m, ac.Required)
	}
}
