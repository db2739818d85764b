package timearg

import (
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"now":                  now,
		"20m":                  now.Add(-20 * time.Minute),
		"-1h30m":               now.Add(-90 * time.Minute),
		"2026-11-23T08:00:00Z": time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC),
	} {
		got, err := Parse(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("%q: %v %v, want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "yesterday", "08:00", "20"} {
		if _, err := Parse(bad, now); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add("20m")
	f.Add("2026-11-23T08:00:00Z")
	f.Fuzz(func(t *testing.T, s string) {
		now := time.Now()
		if got, err := Parse(s, now); err == nil && got.After(now) && s != "now" {
			if _, rerr := time.Parse(time.RFC3339, s); rerr != nil {
				t.Fatalf("%q parsed to the future %v", s, got)
			}
		}
	})
}
