package compliance

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/profiles"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/store"
)

type nopAuditor struct{}

func (nopAuditor) Record(context.Context, audit.Entry) error                   { return nil }
func (nopAuditor) RecordTx(context.Context, audit.Appender, audit.Entry) error { return nil }

// TestUpgradeKeepsStoredProfilesInForce: after an upgrade, the baseline an
// agency never edited (the previous version's, which quarantined every
// laptop) is replaced by this version's; an edited one is IT's and stays;
// a stored profile with the replaced security_updates_within still loads,
// its windows capped at the old value, instead of leaving its devices
// evaluated against nothing.
func TestUpgradeKeepsStoredProfilesInForce(t *testing.T) {
	ctx := context.Background()
	old, err := os.ReadFile("testdata/cjis-baseline-2026-11.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name     string
		by       string
		replaced bool
	}{{"unedited", shippedBy, true}, {"edited", "it-admin@agency.example", false}} {
		t.Run(c.name, func(t *testing.T) {
			st, err := store.Open(ctx, t.TempDir(), "")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			at := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
			for _, d := range []*store.ProfileDoc{
				{Name: profiles.BaselineName, Document: string(old), UpdatedAt: at, UpdatedBy: c.by},
				{Name: "custom", Document: "name: custom\ncontrols:\n  patches:\n    security_updates_within: 20d\n", UpdatedAt: at, UpdatedBy: "it"},
			} {
				if err := st.SaveProfileDoc(ctx, d); err != nil {
					t.Fatal(err)
				}
			}
			s := New(st, nopAuditor{})
			if err := s.Init(ctx); err != nil {
				t.Fatal(err)
			}
			_, shipped := profiles.Baseline()
			doc, err := st.GetProfileDoc(ctx, profiles.BaselineName)
			if err != nil {
				t.Fatal(err)
			}
			if replaced := doc.Document == string(shipped); replaced != c.replaced {
				t.Fatalf("baseline replaced %v, want %v", replaced, c.replaced)
			}
			base, ok := s.Profile(profiles.BaselineName)
			if !ok {
				t.Fatal("baseline not loaded")
			}
			if onLinux := base.Controls.NotRooted.AppliesTo("linux/amd64"); onLinux == c.replaced {
				t.Errorf("not_rooted applies to Linux: %v", onLinux)
			}
			day := 24 * time.Hour
			if w := base.Controls.Patches.Window("high"); w != 30*day {
				t.Errorf("baseline high window %v", w)
			}
			custom, ok := s.Profile("custom")
			if !ok {
				t.Fatal("a stored profile with security_updates_within was not loaded")
			}
			if w := custom.Controls.Patches; w.Window("critical") != 15*day || w.Window("low") != 20*day {
				t.Errorf("custom windows critical %v low %v", w.Window("critical"), w.Window("low"))
			}
		})
	}
}
