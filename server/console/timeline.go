package console

import (
	"fmt"
	"sort"
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
	picHeight = 220.0
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

// Mark is a vertical line at one time, with its label on row Row,
// anchored (SVG text-anchor) so that it stays inside the picture.
type Mark struct {
	X      float64
	Row    int
	Anchor string
	Class  string
	Label  string
}

// LabelY is where a mark's label sits.
func (m Mark) LabelY() float64 { return markBot + 14 + float64(m.Row)*13 }

// Label layout: an estimate of a 10px label's width per character, and
// how many rows of labels fit under the marks.
const (
	charWidth = 5.8
	labelRows = 6
)

// layout gives each mark's label a row and an anchor, so that labels of
// marks close together do not overprint each other: marks in time order,
// each on the first row where it clears the label before it.
func layout(ms []Mark) {
	sort.SliceStable(ms, func(i, j int) bool { return ms[i].X < ms[j].X })
	var ends [labelRows]float64
	for i := range ends {
		ends[i] = -1e9
	}
	for i := range ms {
		m := &ms[i]
		w := float64(len(m.Label)) * charWidth
		left := m.X - w/2
		m.Anchor = "middle"
		switch {
		case m.X+w/2 > picWidth-2:
			m.Anchor, left = "end", m.X-w
		case left < 2:
			m.Anchor, left = "start", m.X
		}
		row := 0
		for r := range ends {
			if ends[r]+6 < left {
				row = r
				break
			}
			if ends[r] < ends[row] {
				row = r
			}
		}
		m.Row, ends[row] = row, left+w
	}
}

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
		p.Line15 = &Mark{X: x(at), Class: "line15", Label: fmt.Sprintf("%d-minute line", int(line.Minutes())), Anchor: lineAnchor(x(at))}
	}
	// The device's word, up to now: never drawn into the future.
	p.Spans = spans(x, incidents.LockSpans(locks, from, earlier(to, now)))
	add := func(at time.Time, class, label string) {
		if inside(at, from, to) {
			p.Marks = append(p.Marks, Mark{X: x(at), Class: class, Label: label})
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
	layout(p.Marks)
	p.Ticks = ticks(x, from, to)
	return p
}

// lineAnchor keeps the 15-minute line's label, written beside the line,
// inside the picture.
func lineAnchor(x float64) string {
	if x > picWidth-100 {
		return "end"
	}
	return "start"
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
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
	// Before enrollment there is no device to have a lock state.
	since := from
	if dev.EnrolledAt.After(from) {
		since = dev.EnrolledAt
		p.Marks = append(p.Marks, Mark{X: x(since), Class: "enrolled", Label: "enrolled"})
	}
	p.Spans = spans(x, incidents.LockSpans(locks, since, to))
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
			p.Line15 = &Mark{X: x(at), Class: "line15", Label: fmt.Sprintf("%d-minute line", int(line.Minutes())), Anchor: lineAnchor(x(at))}
		}
	}
	if dev.LastSeen != nil && inside(*dev.LastSeen, from, to) {
		p.Marks = append(p.Marks, Mark{X: x(*dev.LastSeen), Class: "seen", Label: "last seen"})
	}
	layout(p.Marks)
	p.Ticks = ticks(x, from, to)
	return p
}
