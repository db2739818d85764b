// Package ratelimit slows down guessing of secrets (enrollment tokens,
// API keys): each source address may fail a fixed number of times per
// window; past that it is refused without its guess being checked, so a
// refused guess teaches the guesser nothing.
//
// A refusal is not audited one by one, or a flood of guesses would flood
// the trail: the owner calls Sweep, which hands over one Summary per
// source per window that refused anything.
package ratelimit

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults: 10 failed guesses per minute per source. A person who
// mistypes a token or key a few times is never slowed; a script is held
// to 10 guesses a minute, which against 128-bit secrets is no chance.
const (
	DefaultLimit  = 10
	DefaultWindow = time.Minute
	// maxSources bounds memory under a spoofed-address flood; past it
	// the oldest windows are dropped first (see Fail).
	maxSources = 100_000
)

// Summary is one source's refused guesses over one window.
type Summary struct {
	Source   string
	Start    time.Time
	End      time.Time
	Failures int // failed guesses that counted toward the limit
	Refused  int // guesses refused (429) once over the limit
}

// Limiter counts failed guesses per source. The zero value is not
// usable; call New.
type Limiter struct {
	limit  int
	window time.Duration
	now    func() time.Time
	name   string // WithName
	// refusals is cordon_rate_limited_requests_total{limiter=name}.
	refusals prometheus.Counter

	mu      sync.Mutex
	sources map[string]*window
	ended   []Summary
}

type window struct {
	start    time.Time
	failures int
	refused  int
}

// Option configures a Limiter.
type Option func(*Limiter)

// WithLimit sets how many failures a source may have per window.
func WithLimit(n int) Option { return func(l *Limiter) { l.limit = max(n, 1) } }

// WithWindow sets the window length.
func WithWindow(d time.Duration) Option {
	return func(l *Limiter) {
		if d > 0 {
			l.window = d
		}
	}
}

// WithName names the limiter in its metric's limiter label (default
// "default"): a short constant the composition root gives each limiter,
// such as "api_key" or "enroll_token".
func WithName(name string) Option { return func(l *Limiter) { l.name = name } }

// WithClock replaces the clock (tests).
func WithClock(now func() time.Time) Option { return func(l *Limiter) { l.now = now } }

// New returns a Limiter with the defaults, then opts applied.
func New(opts ...Option) *Limiter {
	l := &Limiter{limit: DefaultLimit, window: DefaultWindow, now: time.Now, name: "default", sources: map[string]*window{}}
	for _, o := range opts {
		o(l)
	}
	// A const label per limiter: each owns its series, and several
	// limiters register side by side under the one metric name.
	l.refusals = prometheus.NewCounter(prometheus.CounterOpts{Name: "cordon_rate_limited_requests_total",
		Help:        "Requests refused (429) by a guess limiter without their secret being checked, by limiter.",
		ConstLabels: prometheus.Labels{"limiter": l.name}})
	return l
}

// Collectors are the limiter's metric, present (at 0) from the start.
func (l *Limiter) Collectors() []prometheus.Collector { return []prometheus.Collector{l.refusals} }

// Limit and Window are the limiter's settings, for documentation and
// audit details.
func (l *Limiter) Limit() int            { return l.limit }
func (l *Limiter) Window() time.Duration { return l.window }

// current returns source's open window, closing an expired one. Callers
// hold mu.
func (l *Limiter) current(source string, now time.Time) *window {
	w := l.sources[source]
	if w != nil && now.Sub(w.start) >= l.window {
		l.close(source, w)
		w = nil
	}
	if w == nil {
		w = &window{start: now}
		l.sources[source] = w
	}
	return w
}

func (l *Limiter) close(source string, w *window) {
	if w.refused > 0 {
		l.ended = append(l.ended, Summary{Source: source, Start: w.start, End: w.start.Add(l.window),
			Failures: w.failures, Refused: w.refused})
	}
	delete(l.sources, source)
}

// Allow says whether source may make a guess now. When it may not, the
// refusal is counted and retryAfter is when its window ends (at least one
// second, as Retry-After counts whole seconds).
func (l *Limiter) Allow(source string) (ok bool, retryAfter time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	w, found := l.sources[source]
	if !found || now.Sub(w.start) >= l.window {
		return true, 0
	}
	if w.failures < l.limit {
		return true, 0
	}
	w.refused++
	l.refusals.Inc()
	return false, max(w.start.Add(l.window).Sub(now), time.Second)
}

// Fail counts a failed guess from source.
func (l *Limiter) Fail(source string) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, found := l.sources[source]; !found && len(l.sources) >= maxSources {
		l.expire(now, true)
	}
	l.current(source, now).failures++
}

// expire closes ended windows; with force and still too many sources it
// drops the oldest window as well.
func (l *Limiter) expire(now time.Time, force bool) {
	var oldest string
	var oldestAt time.Time
	for src, w := range l.sources {
		if now.Sub(w.start) >= l.window {
			l.close(src, w)
			continue
		}
		if oldest == "" || w.start.Before(oldestAt) {
			oldest, oldestAt = src, w.start
		}
	}
	if force && len(l.sources) >= maxSources && oldest != "" {
		l.close(oldest, l.sources[oldest])
	}
}

// Sweep closes the windows that have ended and returns one Summary for
// each that refused a guess; each is returned once.
func (l *Limiter) Sweep() []Summary {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.expire(l.now(), false)
	out := l.ended
	l.ended = nil
	return out
}

// Flush is Sweep that also closes the open windows (at shutdown, so no
// refusal goes unrecorded).
func (l *Limiter) Flush() []Summary {
	l.mu.Lock()
	defer l.mu.Unlock()
	for src, w := range l.sources {
		l.close(src, w)
	}
	out := l.ended
	l.ended = nil
	return out
}
