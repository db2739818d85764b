// Package timefmt is how Cordon writes a time, for people and for
// programs alike: in UTC, to at least the hundredth of a second, which is
// what CJIS AU-8 asks of audit and incident time stamps. One layout per
// audience, so no page, export or email falls back to whole seconds, and
// JSON keeps its zeros (time.RFC3339Nano drops trailing zeros, so a time
// on a whole second would lose its fraction).
package timefmt

import "time"

const (
	// JSONLayout is RFC 3339 in UTC with microseconds, the precision the
	// database keeps; any RFC 3339 parser reads it.
	JSONLayout = "2006-01-02T15:04:05.000000Z"
	// HumanLayout is for pages, forms and email.
	HumanLayout = "2006-01-02 15:04:05.00 UTC"
)

// JSON writes t for APIs, exports and audit details.
func JSON(t time.Time) string { return t.UTC().Format(JSONLayout) }

// Human writes t for people.
func Human(t time.Time) string { return t.UTC().Format(HumanLayout) }
