package timefmt

import (
	"testing"
	"time"
)

// TestHundredthsAndUTC: a time on a whole second keeps its fraction, and
// a time in another zone is written in UTC.
func TestHundredthsAndUTC(t *testing.T) {
	at := time.Date(2026, 12, 1, 7, 4, 5, 0, time.FixedZone("EST", -5*3600))
	if got := JSON(at); got != "2026-12-01T12:04:05.000000Z" {
		t.Errorf("JSON %s", got)
	}
	if got := Human(at.Add(123 * time.Millisecond)); got != "2026-12-01 12:04:05.12 UTC" {
		t.Errorf("Human %s", got)
	}
	if back, err := time.Parse(time.RFC3339Nano, JSON(at)); err != nil || !back.Equal(at) {
		t.Errorf("round trip %v %v", back, err)
	}
}
