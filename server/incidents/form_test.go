package incidents

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/internal/input"
	"github.com/cordon-mdm/cordon/server/store"
)

func TestLockSpansCutTheTimelineToTheWindow(t *testing.T) {
	locks := []store.LockEvent{
		{At: t0.Add(-time.Hour), State: "locked"},
		{At: t0.Add(5 * time.Minute), State: "unlocked"},
		{At: t0.Add(6 * time.Minute), State: "unlocked"}, // no change
		{At: t0.Add(10 * time.Minute), State: "locked"},
		{At: t0.Add(time.Hour), State: "unlocked"}, // after the window
	}
	got := LockSpans(locks, t0, t0.Add(20*time.Minute))
	want := []Span{{"locked", t0, t0.Add(5 * time.Minute)}, {"unlocked", t0.Add(5 * time.Minute), t0.Add(10 * time.Minute)},
		{"locked", t0.Add(10 * time.Minute), t0.Add(20 * time.Minute)}}
	if len(got) != len(want) {
		t.Fatalf("spans %+v", got)
	}
	for i := range want {
		if got[i].State != want[i].State || !got[i].From.Equal(want[i].From) || !got[i].To.Equal(want[i].To) {
			t.Errorf("span %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if s := LockSpans(nil, t0, t0.Add(time.Minute)); len(s) != 1 || s[0].State != "unknown" {
		t.Errorf("no reports: %+v", s)
	}
	if s := LockSpans(locks, t0, t0); s != nil {
		t.Errorf("empty window: %+v", s)
	}
}

// The form takes the posture from the report nearest the start of the
// loss, not the latest, and says so; the LASO's part round-trips and
// every edit is audited with the fields changed.
func TestFormIsFilledFromThePostureAtTheTimeAndTheLASOsEdits(t *testing.T) {
	st := openStore(t, t.TempDir())
	defer st.Close()
	ctx := context.Background()
	dev := store.Device{ID: "d1", Name: "cruiser-12", Platform: "linux/amd64", Owner: "officer@pd.example", Status: "active", EnrolledAt: t0.Add(-48 * time.Hour)}
	other := store.Device{ID: "d2", Name: "phone-12", Platform: "android/arm64", Owner: "officer@pd.example", Status: "active", EnrolledAt: t0}
	st.DB().Create(&dev)
	st.DB().Create(&other)
	report := func(id string, at time.Time, body string, lock string) {
		t.Helper()
		if _, err := st.SavePosture(ctx, &store.PostureReport{DeviceID: "d1", ReportID: id, ReceivedAt: at, CollectedAt: at, TrustedAt: at, Body: body},
			&store.LockEvent{DeviceID: "d1", State: lock, Source: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	report("r-old", t0.Add(-2*time.Hour), `{"hygiene":{"antimalware_on":false}}`, "locked")
	report("r-near", t0.Add(-2*time.Minute), `{"hygiene":{"antimalware_on":true,"antimalware":["clamd"],"antimalware_signatures_at":"2026-11-22T08:00:00Z"},`+
		`"patch":{"last_update":"2026-11-20T08:00:00Z","pending_security":2,"pending":[{"name":"openssl","severity":"critical","first_seen":"2026-11-22T00:00:00Z"}]}}`, "unlocked")
	report("r-late", t0.Add(3*time.Hour), `{"hygiene":{"antimalware_on":false}}`, "locked")
	clk := &clock{t: t0.Add(time.Minute)}
	aud := &auditLog{}
	s := New(st, aud, WithClock(clk.now))
	inc, err := s.Open(ctx, Report{DeviceID: "d1", Kind: KindLossOfControl, LockState: LockUnknown, StartedAt: t0, Description: "left in the car", Actor: "apikey:officer"})
	if err != nil {
		t.Fatal(err)
	}
	_, f, err := LoadForm(ctx, st, inc.ID, t0.Add(30*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	c := f.Checklist
	if c.AntimalwareRunning.Value != "yes (clamd)" || !strings.Contains(c.AntimalwareRunning.Source, "r-near") || !strings.Contains(c.AntimalwareRunning.Source, "hygiene.antimalware_on") {
		t.Errorf("antimalware %+v", c.AntimalwareRunning)
	}
	if !strings.Contains(c.LastSignatureUpdate.Value, "2026-11-22 08:00:00.00 UTC") || !strings.Contains(c.LastSignatureUpdate.Value, "1.0 days") {
		t.Errorf("signatures %+v", c.LastSignatureUpdate)
	}
	if !strings.Contains(c.LastOSUpdate.Value, "2026-11-20 08:00:00.00 UTC") || !strings.Contains(c.LastOSUpdate.Source, "patch.last_update") {
		t.Errorf("os update %+v", c.LastOSUpdate)
	}
	if !strings.HasPrefix(c.PendingSecurityUpdates.Value, "2: openssl (critical)") {
		t.Errorf("pending %+v", c.PendingSecurityUpdates)
	}
	if len(c.LockSpans) != 1 || c.LockSpans[0].State != "unlocked" || !c.LockSpans[0].To.Equal(t0.Add(30*time.Minute)) {
		t.Errorf("lock spans %+v", c.LockSpans)
	}
	if c.DevicesAffected.Value != "1" || !strings.Contains(c.OtherEquipment.Value, "phone-12") {
		t.Errorf("devices %+v %+v", c.DevicesAffected, c.OtherEquipment)
	}
	clk.set(t0.Add(30 * time.Minute))
	// The LASO's part.
	if _, err := s.UpdateForm(ctx, inc.ID, FormUpdate{Actor: "laso"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("empty edit: %v", err)
	}
	if _, err := s.UpdateForm(ctx, inc.ID, FormUpdate{CJICompromised: ptr("maybe"), Actor: "laso"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad answer: %v", err)
	}
	sent := t0.Add(20 * time.Minute)
	if _, err := s.UpdateForm(ctx, inc.ID, FormUpdate{Cause: ptr("left unattended in an unlocked car"), CJICompromised: ptr("no"),
		PIICompromised: ptr("unknown"), ActionPlan: ptr("retrain; re-image"), Reimage: ptr("required"), FBICopySentAt: &sent, Actor: "laso"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateForm(ctx, inc.ID, FormUpdate{Reimage: ptr("done"), Cause: ptr("left unattended in an unlocked car"), Actor: "laso-2"}); err != nil {
		t.Fatal(err)
	}
	_, f, _ = LoadForm(ctx, st, inc.ID, t0.Add(30*time.Minute))
	c = f.Checklist
	if c.SuspectedCause != "left unattended in an unlocked car" || c.CJICompromised != "no" || c.PIICompromised != "unknown" ||
		c.ActionPlan != "retrain; re-image" || c.Reimage != "done" || c.FBICopySentAt != "2026-11-23T08:20:00.000000Z" || c.EditedBy != "laso-2" {
		t.Errorf("LASO's part %+v", c)
	}
	var edits []map[string]string
	for _, e := range aud.entries {
		if e.Action == ActionFormUpdated {
			edits = append(edits, e.Details)
		}
	}
	if len(edits) != 2 || edits[0]["fields"] != "action_plan,cji_compromised,copies_to_fbi_cjis_iso_at,pii_compromised,reimage_before_reconnect,suspected_cause" ||
		edits[1]["fields"] != "reimage_before_reconnect" || edits[1]["field.reimage_before_reconnect"] != "done" {
		t.Errorf("audited edits %+v", edits)
	}
	b, _ := json.Marshal(f)
	for _, want := range []string{`"antimalware_running":{"value":"yes (clamd)"`, `"lock_spans":[{"from":"2026-11-23T08:00:00.000000Z"`, `"copies_to_fbi_cjis_iso_at":"2026-11-23T08:20:00.000000Z"`, `"date_of_incident":"2026-11-23T08:00:00.000000Z"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON lacks %s: %s", want, b)
		}
	}
	var page strings.Builder
	if err := f.WriteHTML(&page); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Suspected cause", "Antimalware running at the time", "Last OS update", "Re-image before reconnection",
		"Copies to the FBI CJIS ISO", "sent 2026-11-23 08:20:00.00 UTC", "2026-11-23 08:00:00.00 UTC (ongoing)", "source: posture report r-near", `href="/console/static/form.css"`} {
		if !strings.Contains(page.String(), want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(page.String(), "<style") || strings.Contains(page.String(), "style=") || strings.Contains(page.String(), "<script") {
		t.Error("the printable page carries inline style or script")
	}
}

func ptr(s string) *string { return &s }

// FuzzFormUpdate feeds the PATCH body decoder and the form edit whatever
// comes: it refuses with ErrInvalid or an input error, or stores text that
// keeps the input rules; it never panics or fails otherwise.
func FuzzFormUpdate(f *testing.F) {
	for _, s := range []string{`{"suspected_cause":"left in a car"}`, `{}`, `{"cji_compromised":"maybe"}`,
		`{"copies_to_fbi_cjis_iso_at":"2026-11-23T08:10:00Z","reimage_before_reconnect":"done"}`,
		`{"action_plan":"a\u0000b"}`, `{"suspected_cause":"x"} {}`, `{"actor":"root"}`} {
		f.Add([]byte(s))
	}
	st := openStore(f, f.TempDir())
	defer st.Close()
	ctx := context.Background()
	st.DB().Create(&store.Device{ID: "d1", Name: "cruiser-12", Status: "active", EnrolledAt: t0})
	clk := &clock{t: t0.Add(time.Minute)}
	s := New(st, &auditLog{}, WithClock(clk.now))
	inc, err := s.Open(ctx, Report{DeviceID: "d1", Kind: KindLossOfControl, LockState: LockUnknown, StartedAt: t0, Actor: "apikey:officer"})
	if err != nil {
		f.Fatal(err)
	}
	clk.set(t0.Add(time.Hour))
	f.Fuzz(func(t *testing.T, body []byte) {
		var u FormUpdate
		if err := input.DecodeJSON(bytes.NewReader(body), &u, input.MaxBody); err != nil {
			return
		}
		u.Actor = "laso"
		got, err := s.UpdateForm(ctx, inc.ID, u)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("%q: %v", body, err)
			}
			return
		}
		if input.FreeText("cause", got.Cause, MaxCause) != nil || input.FreeText("plan", got.ActionPlan, MaxActionPlan) != nil ||
			got.CJICompromised != "" && !slices.Contains(Compromised, got.CJICompromised) || got.Reimage != "" && !slices.Contains(Reimages, got.Reimage) {
			t.Fatalf("%q stored %+v", body, got)
		}
	})
}
