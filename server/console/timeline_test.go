package console

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/server/store"
)

var t0 = time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)

func near(a, b float64) bool { return math.Abs(a-b) < 0.01 }

func TestScaleClipsToTheEdges(t *testing.T) {
	x := scale(t0, t0.Add(time.Hour))
	if !near(x(t0), picLeft) || !near(x(t0.Add(time.Hour)), picRight) || !near(x(t0.Add(30*time.Minute)), (picLeft+picRight)/2) {
		t.Errorf("scale: %v %v %v", x(t0), x(t0.Add(time.Hour)), x(t0.Add(30*time.Minute)))
	}
	if !near(x(t0.Add(-time.Hour)), picLeft) || !near(x(t0.Add(3*time.Hour)), picRight) {
		t.Errorf("not clipped: %v %v", x(t0.Add(-time.Hour)), x(t0.Add(3*time.Hour)))
	}
	if y := scale(t0, t0); !near(y(t0.Add(time.Minute)), picLeft) {
		t.Error("an empty range must not divide by zero")
	}
}

// An ended 40-minute loss: the picture runs from 2 minutes before to 2
// after; the 15-minute line sits at 17/44 of the width; the lock spans
// follow each other without gap or overlap and stay inside.
func TestIncidentPictureGeometry(t *testing.T) {
	end := t0.Add(40 * time.Minute)
	inc := &store.Incident{ID: "i1", DeviceID: "d1", StartedAt: t0, EndedAt: &end}
	seen := t0.Add(3 * time.Minute)
	done := t0.Add(90 * time.Second)
	locks := []store.LockEvent{{At: t0.Add(-time.Hour), State: "unlocked"}, {At: t0.Add(5 * time.Minute), State: "locked"},
		{At: t0.Add(2 * time.Hour), State: "unlocked"}}
	tl := []store.IncidentEvent{{At: t0.Add(time.Minute), Action: "lock"}, {At: t0.Add(time.Minute), Action: "quarantine"},
		{At: t0.Add(time.Minute), Action: "wipe_recommended"}, {At: t0.Add(time.Minute), Action: "disposition"}}
	sent := t0.Add(70 * time.Second)
	ns := []store.Notification{{Channel: "email", Recipient: "laso@pd.example", SentAt: &sent}, {Channel: "email", Recipient: "never@pd.example"}}
	p := incidentPicture(inc, &store.Device{ID: "d1", LastSeen: &seen}, locks, tl, &store.Command{Status: "done", CompletedAt: &done}, ns, 15*time.Minute, end.Add(time.Hour))
	w := picRight - picLeft
	if p.Line15 == nil || !near(p.Line15.X, picLeft+w*17/44) {
		t.Fatalf("15-minute line at %+v, want %.2f", p.Line15, picLeft+w*17/44)
	}
	if p.Window == nil || !near(p.Window.X, picLeft+w*2/44) || !near(p.Window.X+p.Window.W, picLeft+w*42/44) {
		t.Errorf("window %+v", p.Window)
	}
	if len(p.Spans) != 2 || p.Spans[0].Class != "lock-unlocked" || p.Spans[1].Class != "lock-locked" {
		t.Fatalf("spans %+v", p.Spans)
	}
	if !near(p.Spans[0].X, picLeft) || !near(p.Spans[0].X+p.Spans[0].W, p.Spans[1].X) || !near(p.Spans[1].X+p.Spans[1].W, picRight) {
		t.Errorf("spans not in order, clipped and contiguous: %+v", p.Spans)
	}
	if !near(p.Spans[1].X, picLeft+w*7/44) {
		t.Errorf("lock at %v", p.Spans[1].X)
	}
	var labels []string
	for _, m := range p.Marks {
		labels = append(labels, m.Label)
	}
	if got := strings.Join(labels, "|"); got != "lock sent|quarantine|wipe recommended|email laso@pd.example|lock done|last seen" {
		t.Errorf("marks %s", got)
	}
}

// A short or just-opened loss still shows the 15-minute line; an
// ongoing one runs to now.
func TestShortAndOngoingIncidentsKeepTheLineInView(t *testing.T) {
	inc := &store.Incident{ID: "i1", StartedAt: t0}
	p := incidentPicture(inc, nil, nil, nil, nil, nil, 15*time.Minute, t0.Add(2*time.Minute))
	if p.Line15 == nil || p.Line15.X >= picRight || p.Line15.X <= picLeft {
		t.Fatalf("line %+v", p.Line15)
	}
	if len(p.Spans) != 1 || p.Spans[0].Class != "lock-unknown" {
		t.Errorf("spans %+v", p.Spans)
	}
	if x := scale(p.From, p.To)(t0.Add(2 * time.Minute)); !near(p.Window.X+p.Window.W, x) {
		t.Errorf("ongoing window ends at %v, want now %v", p.Window.X+p.Window.W, x)
	}
}

func TestDevicePictureIsTheLastDay(t *testing.T) {
	now := t0.Add(24 * time.Hour)
	seen := now.Add(-time.Hour)
	locks := []store.LockEvent{{At: t0.Add(-time.Hour), State: "locked"}, {At: t0.Add(12 * time.Hour), State: "unlocked"}}
	start := now.Add(-2 * time.Hour)
	p := devicePicture(&store.Device{LastSeen: &seen}, locks, &store.Incident{ID: "i1", StartedAt: start}, 15*time.Minute, now)
	w := picRight - picLeft
	if len(p.Spans) != 2 || !near(p.Spans[0].X, picLeft) || !near(p.Spans[1].X, picLeft+w/2) || !near(p.Spans[1].X+p.Spans[1].W, picRight) {
		t.Errorf("spans %+v", p.Spans)
	}
	if p.Line15 == nil || !near(p.Line15.X, picLeft+w*(22*60+15)/(24*60)) {
		t.Errorf("line %+v", p.Line15)
	}
	if len(p.Marks) != 1 || !near(p.Marks[0].X, picLeft+w*23/24) {
		t.Errorf("last seen %+v", p.Marks)
	}
	if q := devicePicture(&store.Device{}, nil, nil, 0, now); q.Line15 != nil || q.Window != nil {
		t.Errorf("no incident: %+v", q)
	}
}

// Labels of marks close together go on separate rows; a label at the
// right edge is anchored at its end so it stays inside.
func TestLabelsDoNotOverprint(t *testing.T) {
	ms := []Mark{{X: 500, Label: "wipe recommended"}, {X: 500, Label: "lock sent"}, {X: 505, Label: "quarantine"},
		{X: 800, Label: "last seen"}, {X: 955, Label: "email laso@pd.example"}, {X: 3, Label: "escalated"}}
	layout(ms)
	rows := map[float64][]int{}
	for _, m := range ms {
		rows[m.X] = append(rows[m.X], m.Row)
	}
	if ms[0].X != 3 || ms[0].Anchor != "start" || ms[len(ms)-1].Anchor != "end" {
		t.Errorf("order or anchors: %+v", ms)
	}
	seen := map[int]bool{}
	for _, m := range ms[1:4] { // the three at 500-505
		if seen[m.Row] {
			t.Errorf("two labels near x=500 share row %d: %+v", m.Row, ms)
		}
		seen[m.Row] = true
	}
	if ms[4].Row != 0 {
		t.Errorf("a label with room is not on the first row: %+v", ms[4])
	}
}

// An ongoing incident's spans stop at now: the picture runs a little
// past it, the device's word does not.
func TestSpansStopAtNow(t *testing.T) {
	now := t0.Add(20 * time.Minute)
	p := incidentPicture(&store.Incident{ID: "i1", StartedAt: t0}, nil, []store.LockEvent{{At: t0, State: "locked"}}, nil, nil, nil, 15*time.Minute, now)
	last := p.Spans[len(p.Spans)-1]
	if x := scale(p.From, p.To)(now); !near(last.X+last.W, x) || x >= picRight {
		t.Errorf("last span ends at %v, now is at %v", last.X+last.W, x)
	}
}

// The drawing is inline SVG with no style attribute (the CSP forbids
// inline style) and no script.
func TestTimelineRendersWithoutInlineStyle(t *testing.T) {
	pages := parsePages()
	end := t0.Add(40 * time.Minute)
	p := incidentPicture(&store.Incident{ID: "i1", StartedAt: t0, EndedAt: &end}, nil,
		[]store.LockEvent{{At: t0, State: "locked"}}, nil, nil, nil, 15*time.Minute, end)
	var b bytes.Buffer
	if err := pages["incident"].ExecuteTemplate(&b, "timeline", p); err != nil {
		t.Fatal(err)
	}
	s := b.String()
	for _, want := range []string{`<svg id="incident-timeline"`, `id="incident-timeline-line15"`, `class="tl-span lock-locked"`, `class="tl-loss"`} {
		if !strings.Contains(s, want) {
			t.Errorf("SVG lacks %s:\n%s", want, s)
		}
	}
	if strings.Contains(s, "style=") || strings.Contains(s, "<script") || strings.Contains(s, " on") && strings.Contains(s, "=\"javascript") {
		t.Errorf("SVG carries inline style or script:\n%s", s)
	}
}
