package incidents

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/internal/metricstest"
	"github.com/cordon-mdm/cordon/server/store"
)

func wantMetrics(t *testing.T, when string, got map[string]float64, want map[string]float64) {
	t.Helper()
	for k, v := range want {
		g, ok := got[k]
		if !ok || g != v {
			t.Errorf("%s: %s = %v (present %v), want %v", when, k, g, ok, v)
		}
	}
}

// TestIncidentMetrics: the open incidents by category and severity and
// the overdue ones come from the store at each scrape; a filing observes
// its report delay, and each escalation (the 15-minute line, outside the
// US, copies to the FBI) counts once.
func TestIncidentMetrics(t *testing.T) {
	st := openStore(t, t.TempDir())
	defer st.Close()
	st.DB().Create(&store.Device{ID: "d1", Name: "cruiser-12", Status: "active", EnrolledAt: t0})
	st.DB().Create(&store.Device{ID: "d2", Name: "tablet-3", Status: "active", EnrolledAt: t0})
	clk := &clock{t: t0.Add(5 * time.Minute)}
	s := New(st, &auditLog{}, WithClock(clk.now))
	ctx := context.Background()

	wantMetrics(t, "no incidents", metricstest.Samples(t, s.Collectors()...), map[string]float64{
		"cordon_incidents_open{locked_minimal,low}": 0, "cordon_incidents_open{total_loss,critical}": 0,
		"cordon_incidents_overdue{}": 0, "cordon_incident_report_delay_seconds_count{}": 0,
		"cordon_incident_escalations_total{extended}": 0, "cordon_incident_escalations_total{csa_iso}": 0,
		"cordon_incident_escalations_total{fbi_cjis_iso}": 0})

	inc1, err := s.Open(ctx, Report{DeviceID: "d1", Kind: KindLossOfControl, LockState: LockLocked, StartedAt: t0,
		Description: "left on the counter", Actor: "apikey:officer", Source: "10.0.0.9"})
	if err != nil {
		t.Fatal(err)
	}
	wantMetrics(t, "filed 5 minutes after the loss", metricstest.Samples(t, s.Collectors()...), map[string]float64{
		"cordon_incidents_open{locked_minimal,low}": 1, "cordon_incident_report_delay_seconds_count{}": 1,
		"cordon_incident_report_delay_seconds_sum{}": 300})

	clk.set(t0.Add(20 * time.Minute))
	if err := s.Escalate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Open(ctx, Report{DeviceID: "d2", Kind: KindTotalLoss, StartedAt: t0.Add(19 * time.Minute), OutsideUS: true,
		Description: "stolen at the airport", Actor: "apikey:officer", Source: "10.0.0.9"}); err != nil {
		t.Fatal(err)
	}
	s.Escalate(ctx) // nothing more is due: it counts once
	wantMetrics(t, "escalated at the line, second filed abroad", metricstest.Samples(t, s.Collectors()...), map[string]float64{
		"cordon_incidents_open{locked_minimal,low}": 0, "cordon_incidents_open{locked_extended,moderate}": 1,
		"cordon_incidents_open{total_loss,critical}": 1, "cordon_incident_escalations_total{extended}": 1,
		"cordon_incident_escalations_total{csa_iso}": 1, "cordon_incident_report_delay_seconds_count{}": 2,
		"cordon_incident_report_delay_seconds_sum{}": 360, "cordon_incidents_overdue{}": 0})

	// An hour after the first was filed (at 0:05) nobody was told of it;
	// the second's hour (from 0:20) has not passed.
	clk.set(t0.Add(66 * time.Minute))
	wantMetrics(t, "the first past its deadline", metricstest.Samples(t, s.Collectors()...), map[string]float64{"cordon_incidents_overdue{}": 1})
	sent := t0.Add(66 * time.Minute)
	if err := st.QueueNotifications(ctx, []store.Notification{{ID: "n1", IncidentID: inc1.ID, Channel: "email",
		CreatedAt: t0.Add(5 * time.Minute), NextAttempt: sent, SentAt: &sent}}); err != nil {
		t.Fatal(err)
	}
	wantMetrics(t, "the first notified (late)", metricstest.Samples(t, s.Collectors()...), map[string]float64{"cordon_incidents_overdue{}": 0})

	at := t0.Add(60 * time.Minute)
	for range 2 {
		if _, err := s.UpdateForm(ctx, inc1.ID, FormUpdate{FBICopySentAt: &at, Actor: "laso", Source: "local"}); err != nil &&
			!strings.Contains(err.Error(), "nothing to change") {
			t.Fatal(err)
		}
		at = at.Add(time.Minute) // a corrected time is no second escalation
	}
	if _, err := s.Update(ctx, inc1.ID, Update{EndedAt: &at, Status: "resolved", Actor: "laso", Source: "local"}); err != nil {
		t.Fatal(err)
	}
	wantMetrics(t, "copies to the FBI, then resolved", metricstest.Samples(t, s.Collectors()...), map[string]float64{
		"cordon_incident_escalations_total{fbi_cjis_iso}": 1, "cordon_incidents_open{locked_extended,moderate}": 0,
		"cordon_incidents_open{total_loss,critical}": 1})
}
