package applemdm

import (
	"testing"

	"github.com/cordon-mdm/cordon/protocol"
)

// Root detection on an iPhone comes from its installed applications:
// unknown until they are listed, a finding with its evidence when a
// jailbreak tool is among them.
func TestJailbreakFromInstalledApplications(t *testing.T) {
	h := &protocol.Hygiene{}
	jailbreak(h, nil)
	if h.RootedSuspected != nil || h.Unknown["rooted_suspected"] == "" {
		t.Fatalf("without an application list: %+v", h)
	}
	jailbreak(h, &protocol.Software{Applications: []protocol.Application{{ID: "com.apple.mobilesafari"}, {ID: "com.agency.cad"}}})
	if h.RootedSuspected == nil || *h.RootedSuspected || len(h.RootedEvidence) != 0 || h.Unknown["rooted_suspected"] != "" {
		t.Fatalf("clean list: %+v", h)
	}
	jailbreak(h, &protocol.Software{Applications: []protocol.Application{{ID: "com.apple.mobilesafari"}, {ID: "org.coolstar.SileoStore"}}})
	if h.RootedSuspected == nil || !*h.RootedSuspected || len(h.RootedEvidence) != 1 || h.RootedEvidence[0] != "jailbreak tool installed: Sileo (org.coolstar.SileoStore)" {
		t.Fatalf("Sileo installed: %+v", h)
	}
}

func TestPosturePlatformIsWhatProfilesName(t *testing.T) {
	for _, c := range []struct{ device, prev, want string }{
		{"ios", "", "ios/arm64"}, {"ipados", "ios/arm64", "ios/arm64"},
		{"macos", "", "macos"}, {"macos", "macos/arm64", "macos/arm64"}, {"macos", "macos", "macos"},
	} {
		if got := posturePlatform(c.device, c.prev); got != c.want {
			t.Errorf("posturePlatform(%q, %q) = %q, want %q", c.device, c.prev, got, c.want)
		}
	}
}
