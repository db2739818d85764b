// Package timearg reads the times people type on command lines: "now",
// an RFC 3339 time, or how long ago ("20m", "1h30m").
package timearg

import (
	"fmt"
	"strings"
	"time"
)

// Parse reads s relative to now.
func Parse(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "now" {
		return now, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(strings.TrimPrefix(s, "-"))
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a duration ago (20m)", s)
	}
	return now.Add(-d), nil
}
