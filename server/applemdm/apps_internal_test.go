package applemdm

import (
	"strings"
	"testing"
	"time"

	"howett.net/plist"

	"github.com/cordon-mdm/cordon/protocol"
)

// TestSoftwareRefusesWhatDoesNotValidate: a binary plist can carry what
// an XML one cannot (a control character); such a list is no list, and
// neither is more than protocol.MaxApplications of one, past which
// compliance could not see the rest.
func TestSoftwareRefusesWhatDoesNotValidate(t *testing.T) {
	answer := func(items []map[string]any) Answer {
		raw, err := plist.Marshal(map[string]any{"Status": StatusAcknowledged, "InstalledApplicationList": items}, plist.BinaryFormat)
		if err != nil {
			t.Fatal(err)
		}
		return Answer{Status: StatusAcknowledged, Raw: raw}
	}
	sw := software(answer([]map[string]any{{"Identifier": "com.example.chat"}, {"Identifier": "com.example.evil", "Name": "a\x1b[2Jb"}}))
	if r := sw.Unknown["applications"]; len(sw.Applications) != 0 || !strings.Contains(r, "refused") || !strings.Contains(r, "[1].Name") {
		t.Fatalf("a control character: %+v", sw)
	}
	var many []map[string]any
	for range protocol.MaxApplications + 3 {
		many = append(many, map[string]any{"Identifier": "com.example.app"})
	}
	sw = software(answer(many))
	if r := sw.Unknown["applications"]; len(sw.Applications) != protocol.MaxApplications || !strings.Contains(r, "listed 4099 applications") {
		t.Fatalf("too many: %d apps, %q", len(sw.Applications), r)
	}
	if p := (protocol.Posture{CollectedAt: time.Now(), OS: protocol.OSIdentity{Platform: "macos"}, Software: sw}); p.Check() != nil {
		t.Fatalf("the kept list does not pass the posture check: %v", p.Check())
	}
	sw = software(Answer{Status: StatusError, Raw: []byte("<plist>"), ErrorChain: nil})
	if r := sw.Unknown["applications"]; !strings.Contains(r, "with Error: the device reported an error and no error chain") {
		t.Fatalf("error without a chain: %q", r)
	}
	sw = software(Answer{Status: StatusAcknowledged, Raw: []byte("not a plist")})
	if r := sw.Unknown["applications"]; !strings.Contains(r, "could not be read") {
		t.Fatalf("unreadable: %q", r)
	}
}
