package compliance

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cordon-mdm/cordon/internal/scrapemetric"
	"github.com/cordon-mdm/cordon/server/store"
)

// TestDevicesMetric: cordon_devices counts the active devices by
// platform (OS part, unknown ones as "other"), compliance and online,
// and its compliance is the API's: the count agrees with State for every
// device, once the service has recorded what changed.
func TestDevicesMetric(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	now := time.Now().UTC().Truncate(time.Microsecond)
	evaluated := &now
	for _, d := range []store.Device{
		{ID: "ok1", Platform: "linux/amd64", ComplianceAt: evaluated},
		{ID: "ok2", Platform: "linux/arm64", ComplianceAt: evaluated},
		{ID: "grace", Platform: "windows/amd64", ComplianceAt: evaluated},
		{ID: "held", Platform: "ios", ComplianceAt: evaluated, QuarantinedAt: evaluated, QuarantineIncident: "i1"},
		{ID: "new", Platform: "plan9/amd64"},
		{ID: "gone", Platform: "linux/amd64", ComplianceAt: evaluated, Status: store.StatusRevoked},
	} {
		if d.Status == "" {
			d.Status = store.StatusActive
		}
		d.EnrolledAt = now
		if err := st.DB().Create(&d).Error; err != nil {
			t.Fatal(err)
		}
	}
	if err := st.SaveFindings(ctx, []store.Finding{{DeviceID: "grace", Control: "patches", Severity: "high", Message: "behind",
		Grace: 48 * time.Hour, FirstSeen: now, LastSeen: now}}, nil, now); err != nil {
		t.Fatal(err)
	}
	if err := st.MarkConnected(ctx, "ok1", "10.0.0.1", now, ""); err != nil {
		t.Fatal(err)
	}
	s := New(st, nopAuditor{})
	if err := s.Sweep(ctx); err != nil { // records every state that changed
		t.Fatal(err)
	}

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(s.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var vs []string
			for _, l := range m.GetLabel() {
				vs = append(vs, l.GetName()+"="+l.GetValue())
			}
			got = append(got, fmt.Sprintf("%s %v", strings.Join(vs, ","), m.GetGauge().GetValue()))
		}
	}
	slices.Sort(got)
	want := []string{
		"compliance=compliant,online=false,platform=linux 1",
		"compliance=compliant,online=true,platform=linux 1",
		"compliance=noncompliant,online=false,platform=windows 1",
		"compliance=quarantined,online=false,platform=ios 1",
		"compliance=unknown,online=false,platform=other 1",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("cordon_devices:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The same figures from the API's rule, device by device.
	var live []string
	for _, id := range []string{"ok1", "ok2", "grace", "held", "new"} {
		d, _ := st.GetDevice(ctx, id)
		stt, err := s.State(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		goos, _, _ := strings.Cut(d.Platform, "/")
		live = append(live, fmt.Sprintf("compliance=%s,online=%s,platform=%s 1", stt.State, strconv.FormatBool(d.Online), scrapemetric.Bounded(goos, Platforms)))
	}
	slices.Sort(live)
	if !slices.Equal(live, want) {
		t.Fatalf("the API's states:\n%s\ndisagree with the metric's", strings.Join(live, "\n"))
	}
}
