package store

import (
	"fmt"
	"time"
)

// anyTime scans a time the database computed (MIN, MAX of a time
// column): PostgreSQL answers a timestamp, while SQLite, which has no
// time type, answers the text the driver stored (an aggregate loses the
// column's declared type, so the driver does not parse it back).
type anyTime time.Time

// sqliteLayouts are the layouts the SQLite driver writes times in.
var sqliteLayouts = []string{"2006-01-02 15:04:05.999999999-07:00", time.RFC3339Nano,
	"2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999"}

func (t *anyTime) Scan(v any) error {
	switch v := v.(type) {
	case nil:
		*t = anyTime{}
		return nil
	case time.Time:
		*t = anyTime(v.UTC())
		return nil
	case []byte:
		return t.parse(string(v))
	case string:
		return t.parse(v)
	}
	return fmt.Errorf("store: cannot scan %T as a time", v)
}

func (t *anyTime) parse(s string) error {
	for _, l := range sqliteLayouts {
		if p, err := time.Parse(l, s); err == nil {
			*t = anyTime(p.UTC())
			return nil
		}
	}
	return fmt.Errorf("store: unrecognised time %q", s)
}
