package applemdm_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/server/applemdm"
	"github.com/cordon-mdm/cordon/server/store"
)

// lateStore is the env's store, which newEnv opens after the options
// that need it are made.
type lateStore struct{ *store.Store }

// TestInstalledApplicationListBecomesTheSoftwareSection: each answer
// replaces the device's application list in its posture; one Apple
// could not give is recorded as unknown with the reason, and the device
// is not made to send it again.
func TestInstalledApplicationListBecomesTheSoftwareSection(t *testing.T) {
	late := &lateStore{}
	e := newEnv(t, applemdm.WithPosture(late, nil))
	late.Store = e.st
	dev, id := e.enrolled(t, "00008110-000APPS000000001")
	n := 0
	ask := func(status string, extra map[string]any) *protocol.Software {
		t.Helper()
		n++
		ref := "apps" + strings.Repeat("x", n)
		if err := e.mdm.Send(t.Context(), id, applemdm.Command{RequestType: "InstalledApplicationList", Ref: ref}); err != nil {
			t.Fatal(err)
		}
		c := dev.Next(t)
		if c == nil || c.UUID != "InstalledApplicationList."+ref {
			t.Fatalf("device fetched %+v", c)
		}
		if next := dev.Answer(t, c.UUID, status, extra); next != nil {
			t.Fatalf("queue not empty: %+v", next)
		}
		d, err := e.st.GetDevice(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		var p protocol.Posture
		if err := json.Unmarshal([]byte(d.Posture), &p); err != nil || p.Software == nil {
			t.Fatalf("posture %q: %v", d.Posture, err)
		}
		if p.OS.Platform != "ios/arm64" || p.Lock == nil || p.Lock.State != protocol.LockUnknown {
			t.Errorf("amended posture %+v", p)
		}
		return p.Software
	}
	longName := strings.Repeat("é", 400) // 800 bytes
	sw := ask(applemdm.StatusAcknowledged, map[string]any{"InstalledApplicationList": []map[string]any{
		{"Identifier": "com.example.chat", "Name": "Chat", "ShortVersion": "4.2", "Version": "420", "BundleSize": 1234},
		{"Identifier": "gov.agency.cad", "Name": longName, "Version": "77"},
		{"Name": "a bare executable"},
	}})
	if len(sw.Applications) != 2 || sw.Source != "apple-mdm" || len(sw.Unknown) != 0 {
		t.Fatalf("software %+v", sw)
	}
	if a := sw.Applications[0]; a != (protocol.Application{ID: "com.example.chat", Name: "Chat", Version: "4.2"}) {
		t.Errorf("first app %+v", a)
	}
	if a := sw.Applications[1]; a.ID != "gov.agency.cad" || a.Version != "77" || a.Name != strings.Repeat("é", protocol.MaxPostureText/2) {
		t.Errorf("second app %q %q, %d bytes of name", a.ID, a.Version, len(a.Name))
	}

	sw = ask(applemdm.StatusAcknowledged, map[string]any{"InstalledApplicationList": []map[string]any{
		{"Identifier": "gov.agency.cad", "Name": "CAD", "ShortVersion": "1.0"}}})
	if len(sw.Applications) != 1 || sw.Applications[0].ID != "gov.agency.cad" {
		t.Fatalf("the next answer: %+v", sw)
	}

	sw = ask(applemdm.StatusError, map[string]any{"ErrorChain": []map[string]any{
		{"ErrorDomain": "MCMDMErrorDomain", "ErrorCode": 12021, "USEnglishDescription": "The device is locked"}}})
	if r := sw.Unknown["applications"]; len(sw.Applications) != 0 || !strings.Contains(r, "with Error: MCMDMErrorDomain 12021: The device is locked") {
		t.Fatalf("an Error answer: %+v", sw)
	}

}
