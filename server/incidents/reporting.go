package incidents

import (
	"fmt"
	"time"

	"github.com/cordon-mdm/cordon/server/store"
)

// ReportDeadline is IR-6 (CJIS Security Policy v6.0): a suspected
// incident is reported at most one hour after its discovery.
const ReportDeadline = time.Hour

// Reporting is an incident's reporting clock: when it was discovered and
// when the first notification about it was accepted (an SMTP server's 250
// after DATA, or the webhook's 2xx).
type Reporting struct {
	// DiscoveredAt is when Cordon learnt of the incident: the report's
	// arrival, or the server's own detection.
	DiscoveredAt time.Time
	// NotifiedAt is the first accepted notification to a LASO, an IT
	// administrator, the CSA ISO or the webhook; nil while none is.
	NotifiedAt *time.Time
	// NotifiedIn is NotifiedAt - DiscoveredAt.
	NotifiedIn time.Duration
	// Overdue: no notification accepted and the deadline has passed.
	Overdue bool
	// Late: notified, but after the deadline.
	Late bool
	// Deadline is DiscoveredAt + ReportDeadline.
	Deadline time.Time
}

// Text is what the console and the API show: "notified in 40 s",
// "notified in 1 h 5 min (late)", "overdue" or "not yet notified".
func (r Reporting) Text() string {
	switch {
	case r.NotifiedAt != nil && r.Late:
		return "notified in " + ForPeople(r.NotifiedIn) + " (late: the limit is 1 h)"
	case r.NotifiedAt != nil:
		return "notified in " + ForPeople(r.NotifiedIn)
	case r.Overdue:
		return "overdue: no notification accepted within 1 h of discovery"
	}
	return "not yet notified"
}

// ReportClock computes the clock from the incident's notifications at now.
func ReportClock(inc *store.Incident, ns []store.Notification, now time.Time) Reporting {
	r := Reporting{DiscoveredAt: inc.CreatedAt.UTC(), Deadline: inc.CreatedAt.UTC().Add(ReportDeadline)}
	for _, n := range ns {
		if n.IncidentID != inc.ID || n.About != "" || n.SentAt == nil {
			continue
		}
		if r.NotifiedAt == nil || n.SentAt.Before(*r.NotifiedAt) {
			t := n.SentAt.UTC()
			r.NotifiedAt = &t
		}
	}
	if r.NotifiedAt != nil {
		r.NotifiedIn = max(r.NotifiedAt.Sub(r.DiscoveredAt), 0)
		r.Late = r.NotifiedIn > ReportDeadline
	} else {
		r.Overdue = now.After(r.Deadline)
	}
	return r
}

// ReportClock is the incident's reporting clock on the service's clock.
func (s *Service) ReportClock(inc *store.Incident, ns []store.Notification) Reporting {
	return ReportClock(inc, ns, s.now().UTC())
}

// ForPeople renders a duration for people: "40 s", "12 min 5 s", "1 h 5 min".
func ForPeople(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min %d s", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%d h %d min", int(d.Hours()), int(d.Minutes())%60)
}
