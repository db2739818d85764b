package console

import (
	"fmt"
	"time"

	"github.com/cordon-mdm/cordon/server/incidents"
	"github.com/cordon-mdm/cordon/server/store"
)

// The pictures are inline SVG drawn on the server: the CSP (no script,
// style-src 'self') stays as it is. They use presentation attributes and
// classes the console's stylesheet colours, never a style attribute.

// Geometry of a picture, in SVG user units.
const (
	picWidth  = 960.0
	picLeft   = 10.0
	picRight  = 950.0
	spanY     = 40.0
	spanH     = 26.0
	markTop   = 30.0
	markBot   = 120.0
	picHeight = 190.0
)

// Picture is one drawn timeline.
type Picture struct {
	ID            string
	Label         string
	Width, Height float64
	From, To      time.Time
	// Window is the loss (nil on the device page).
	Window *Bar
	// Line15 is the 15-minute line (nil when it falls outside the
	// picture, or on the device page).
	Line15 *Mark
	Spans  []Bar
	Marks  []Mark
	Ticks  []Mark
}

// Bar is a horizontal stretch.
type Bar struct {
	X, W  float64
	Class string
	Label string
}

// Mark is a vertical line at one time, with its label on row Row.
type Mark struct {
	X     float64
	Row   int
	Class string
	Label string
}

// LabelY is where a mark's label sits.
func (m Mark) LabelY() float64 { return markBot + 14 + float64(m.Row%3)*14 }

// scale maps times in [from, to] to x in [picLeft, picRight], clipping
// outside times to the edges.
func scale(from, to time.Time) func(time.Time) float64 {
	span := to.Sub(from).Seconds()
	return func(t time.Time) float64 {
		if span <= 0 || !t.After(from) {
			return picLeft
		}
		if !t.Before(to) {
			return picRight
		}
		return picLeft + (picRight-picLeft)*t.Sub(from).Seconds()/span
	}
}

// inside says whether t falls in [from, to].
func inside(t, from, to time.Time) bool { return !t.Before(from) && !t.After(to) }

func spans(x func(time.Time) float64, ss []incidents.Span) []Bar {
	out := make([]Bar, 0, len(ss))
	for _, s := range ss {
		out = append(out, Bar{X: x(s.From), W: x(s.To) - x(s.From), Class: "lock-" + s.State,
			Label: fmt.Sprintf("%s from %s to %s", s.State, s.From.UTC().Format(incidents.HumanTime), s.To.UTC().Format(incidents.HumanTime))})
	}
	return out
}

func ticks(x func(time.Time) float64, from, to time.Time) []Mark {
	step := time.Minute
	for _, s := range []time.Duration{time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour} {
		step = s
		if to.Sub(from)/s <= 8 {
			break
		}
	}
	var out []Mark
	for t := from.Truncate(step).Add(step); t.Before(to); t = t.Add(step) {
		out = append(out, Mark{X: x(t), Class: "tick", Label: t.UTC().Format("15:04")})
	}
	return out
}

// incidentPicture draws an incident: the loss window from its start to
// its end (or now), the 15-minute line, the device's lock-state spans,
// when it was last seen, the playbook's actions and the notifications.
// The picture starts a little before the loss and ends a little after,
// so the edges can be seen.
func incidentPicture(inc *store.Incident, dev *store.Device, locks []store.LockEvent, tl []store.IncidentEvent,
	lockCmd *store.Command, ns []store.Notification, line time.Duration, now time.Time) Picture {
	end := now
	if inc.EndedAt != nil {
		end = *inc.EndedAt
	}
	if line <= 0 {
		line = 15 * time.Minute
	}
	length := end.Sub(inc.StartedAt)
	if length < line+line/10 {
		length = line + line/10 // the 15-minute line is always in view
	}
	pad := length / 20
	from, to := inc.StartedAt.Add(-pad), inc.StartedAt.Add(length+pad)
	x := scale(from, to)
	p := Picture{ID: "incident-timeline", Width: picWidth, Height: picHeight, From: from, To: to,
		Label: fmt.Sprintf("Loss of control from %s to %s", inc.StartedAt.UTC().Format(incidents.HumanTime), endLabel(inc, now))}
	p.Window = &Bar{X: x(inc.StartedAt), W: x(end) - x(inc.StartedAt), Class: "loss", Label: p.Label}
	if at := inc.StartedAt.Add(line); inside(at, from, to) {
		p.Line15 = &Mark{X: x(at), Class: "line15", Label: fmt.Sprintf("%d-minute line", int(line.Minutes()))}
	}
	p.Spans = spans(x, incidents.LockSpans(locks, from, to))
	row := 0
	add := func(at time.Time, class, label string) {
		if inside(at, from, to) {
			p.Marks = append(p.Marks, Mark{X: x(at), Row: row, Class: class, Label: label})
			row++
		}
	}
	if dev != nil && dev.LastSeen != nil {
		add(*dev.LastSeen, "seen", "last seen")
	}
	for _, e := range tl {
		switch e.Action {
		case "lock":
			add(e.At, "action", "lock sent")
		case "quarantine":
			add(e.At, "action", "quarantine")
		case "wipe_recommended":
			add(e.At, "action", "wipe recommended")
		case "escalated":
			add(e.At, "action", "escalated")
		}
	}
	if lockCmd != nil && lockCmd.CompletedAt != nil {
		add(*lockCmd.CompletedAt, "action", "lock "+lockCmd.Status)
	}
	for _, n := range ns {
		if n.SentAt != nil {
			add(*n.SentAt, "notify", n.Channel+" "+n.Recipient)
		}
	}
	p.Ticks = ticks(x, from, to)
	return p
}

func endLabel(inc *store.Incident, now time.Time) string {
	if inc.EndedAt != nil {
		return inc.EndedAt.UTC().Format(incidents.HumanTime)
	}
	return "now (" + now.UTC().Format(incidents.HumanTime) + ", ongoing)"
}

// devicePicture draws the device's lock timeline over the last day,
// when it was last seen, and, when inc (the device's latest incident) is
// not nil, its loss window and 15-minute line where they fall in the day.
func devicePicture(dev *store.Device, locks []store.LockEvent, inc *store.Incident, line time.Duration, now time.Time) Picture {
	from, to := now.Add(-24*time.Hour), now
	x := scale(from, to)
	p := Picture{ID: "device-timeline", Width: picWidth, Height: picHeight, From: from, To: to,
		Label: fmt.Sprintf("Lock state from %s to %s", from.UTC().Format(incidents.HumanTime), to.UTC().Format(incidents.HumanTime))}
	p.Spans = spans(x, incidents.LockSpans(locks, from, to))
	if inc != nil {
		end := now
		if inc.EndedAt != nil {
			end = *inc.EndedAt
		}
		if end.After(from) {
			p.Window = &Bar{X: x(inc.StartedAt), W: x(end) - x(inc.StartedAt), Class: "loss",
				Label: fmt.Sprintf("incident %s from %s to %s", inc.ID, inc.StartedAt.UTC().Format(incidents.HumanTime), endLabel(inc, now))}
		}
		if line <= 0 {
			line = 15 * time.Minute
		}
		if at := inc.StartedAt.Add(line); inside(at, from, to) {
			p.Line15 = &Mark{X: x(at), Class: "line15", Label: fmt.Sprintf("%d-minute line", int(line.Minutes()))}
		}
	}
	if dev.LastSeen != nil && inside(*dev.LastSeen, from, to) {
		p.Marks = append(p.Marks, Mark{X: x(*dev.LastSeen), Class: "seen", Label: "last seen"})
	}
	p.Ticks = ticks(x, from, to)
	return p
}
