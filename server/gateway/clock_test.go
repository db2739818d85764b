package gateway

import (
	"testing"
	"time"
)

func TestTrust(t *testing.T) {
	rcv := time.Date(2026, 12, 1, 11, 0, 0, 0, time.UTC)
	enrolled := rcv.Add(-24 * time.Hour)
	for _, c := range []struct {
		name     string
		device   time.Time
		enrolled time.Time
		at       time.Time
		skewed   bool
	}{
		{"on time", rcv, enrolled, rcv, false},
		{"spooled ten minutes ago", rcv.Add(-10 * time.Minute), enrolled, rcv.Add(-10 * time.Minute), false},
		{"spooled a day ago, just after enrollment", enrolled.Add(time.Second), enrolled, enrolled.Add(time.Second), false},
		{"a little fast: held to receipt, not flagged", rcv.Add(4 * time.Minute), enrolled, rcv, false},
		{"exactly the tolerance ahead", rcv.Add(5 * time.Minute), enrolled, rcv, false},
		{"beyond the tolerance ahead", rcv.Add(5*time.Minute + time.Second), enrolled, rcv, true},
		{"a year ahead", rcv.AddDate(1, 0, 0), enrolled, rcv, true},
		{"the year 9999", time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC), enrolled, rcv, true},
		{"before enrollment", enrolled.Add(-time.Hour), enrolled, rcv, true},
		{"a clock slow by less than the tolerance at enrollment", enrolled.Add(-4 * time.Minute), enrolled, enrolled.Add(-4 * time.Minute), false},
		{"the zero time", time.Time{}, enrolled, rcv, true},
		{"enrollment unknown", rcv.Add(-time.Hour), time.Time{}, rcv.Add(-time.Hour), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := trust(c.device, rcv, c.enrolled)
			if !got.At.Equal(c.at) || got.Skewed != c.skewed {
				t.Fatalf("trust(%s) = %+v, want at %s skewed %v", c.device, got, c.at, c.skewed)
			}
			if want := c.device.Unix() - rcv.Unix(); got.Skewed && got.SkewSeconds != want {
				t.Fatalf("skew %ds, want %ds", got.SkewSeconds, want)
			}
			if got.At.After(rcv) {
				t.Fatalf("trusted time %s after receipt %s", got.At, rcv)
			}
		})
	}
}
