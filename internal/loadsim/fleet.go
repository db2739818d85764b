package loadsim

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cordon-mdm/cordon/agent"
)

// RunConfig is one simulator process's share of a fleet.
type RunConfig struct {
	Root        string // state dirs, enrolled by Enroll
	First       int
	Count       int
	Process     int           // this process's number, echoed in every line
	Duration    time.Duration // the run stops by itself after it
	Poll        time.Duration // the agent's posture poll; zero keeps its default
	Report      time.Duration // the agent's periodic full report; zero keeps its default
	LockEvery   time.Duration // mean time between a user's lock changes; 0 never
	BackoffBase time.Duration // with BackoffMax; zero keeps the agent's defaults
	BackoffMax  time.Duration
	Ramp        int           // agents connecting at once at start; 0 starts all at once
	StatsEvery  time.Duration // how often a stats line is written
	Version     string
	FIPS        bool
	Out         io.Writer    // JSON lines: stats, marks, the final line
	Control     io.Reader    // optional: "report", "mark NAME", "stop" lines
	AckedOut    io.Writer    // optional: "<device id> <frame id>" per acknowledged frame, at the end
	Log         *slog.Logger // the agents' errors; nil discards them
}

// Stats is a stats line. Counters are totals since the start.
type Stats struct {
	T         int64  `json:"t"` // Unix milliseconds
	Process   int    `json:"proc"`
	Agents    int    `json:"agents"`
	Started   int64  `json:"started"`
	Connected int64  `json:"connected"` // sessions the server accepted (hello acknowledged), now
	Connects  int64  `json:"connects"`  // such sessions, ever
	Drops     int64  `json:"drops"`     // accepted sessions that ended
	Failed    int64  `json:"failed"`    // attempts that ended before the server accepted them
	Refused   int64  `json:"refused"`   // of those, refused at TCP (nothing listening)
	Sent      int64  `json:"sent"`      // report and command-answer frames written
	Acked     int64  `json:"acked"`     // of those, acknowledged by the server
	Commands  int64  `json:"commands"`  // commands the simulated devices answered
	Final     bool   `json:"final,omitempty"`
	Error     string `json:"error,omitempty"`
}

// Mark is written for a "mark NAME" control line: the acknowledgement
// latency (frame written → server's ack, that is the server's durable
// commit) of every frame acknowledged since the previous mark.
type Mark struct {
	T       int64   `json:"t"`
	Process int     `json:"proc"`
	Mark    string  `json:"mark"`
	Acks    int     `json:"acks"`
	P50ms   float64 `json:"p50_ms"`
	P99ms   float64 `json:"p99_ms"`
	MaxMs   float64 `json:"max_ms"`
	FirstMs int64   `json:"first_ack"` // Unix milliseconds of the first and last of them
	LastMs  int64   `json:"last_ack"`
	// At99Ms is when 99% of them had been acknowledged (Unix ms): a rate
	// over it is not set by the few agents that were reconnecting.
	At99Ms int64 `json:"at99_ack"`
}

type fleet struct {
	cfg                                           RunConfig
	started, up, connects, drops, failed, refused atomic.Int64
	sent, acked, commands                         atomic.Int64
	latMu                                         sync.Mutex
	lat                                           []time.Duration
	ackAt                                         []time.Time
	firstAck, lastAck                             time.Time
	outMu                                         sync.Mutex
}

type simAgent struct {
	f       *fleet
	a       *agent.Agent
	up      atomic.Bool
	release func() // frees the agent's ramp slot, once
	mu      sync.Mutex
	sent    map[string]time.Time
	acked   []string
}

// Run runs the agents until cfg.Duration has passed, ctx ends or a
// "stop" line arrives, writing a stats line every cfg.StatsEvery and a
// final one.
func Run(ctx context.Context, cfg RunConfig) error {
	if cfg.Duration <= 0 {
		return errors.New("a run needs a duration: the simulator stops by itself")
	}
	if cfg.StatsEvery <= 0 {
		cfg.StatsEvery = time.Second
	}
	f := &fleet{cfg: cfg}
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	agents := make([]*simAgent, cfg.Count)
	for k := range agents {
		i := cfg.First + k
		s := &simAgent{f: f, sent: map[string]time.Time{}}
		dev := NewDevice(i, cfg.LockEvery, cfg.Version)
		opts := []agent.Option{agent.WithCollector(dev), agent.WithExecutor(NewExecutor(dev, &f.commands)),
			agent.WithLocalAddr(SourceIP(i)), agent.WithVersion(cfg.Version), agent.WithFIPS(cfg.FIPS),
			agent.WithLogger(slog.New(&errorsOnly{log: cfg.Log})),
			agent.WithObserver(agent.Observer{Sent: s.onSent, Acked: s.onAcked, Connected: s.onConnected, Ended: s.onEnded})}
		// What is not set stays the agent's own default: the storm is
		// the deployed agents' backoff, not one made up for the bench.
		if cfg.Poll > 0 {
			opts = append(opts, agent.WithPollInterval(cfg.Poll))
		}
		if cfg.Report > 0 {
			opts = append(opts, agent.WithReportInterval(cfg.Report))
		}
		if cfg.BackoffBase > 0 && cfg.BackoffMax > 0 {
			opts = append(opts, agent.WithBackoff(cfg.BackoffBase, cfg.BackoffMax))
		}
		a, err := agent.New(StateDir(cfg.Root, i), opts...)
		if err != nil {
			return fmt.Errorf("agent %d: %w", i, err)
		}
		s.a = a
		agents[k] = s
	}
	if cfg.Control != nil {
		go f.control(ctx, cancel, agents)
	}
	go f.stats(ctx)

	var wg sync.WaitGroup
	slots := make(chan struct{}, max(cfg.Ramp, 1))
	for _, s := range agents {
		if cfg.Ramp > 0 {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
			}
			if ctx.Err() != nil {
				break
			}
			// A slot is freed when the agent is connected, or after a
			// while if it cannot be, so one stuck agent does not stall
			// the start.
			s.release = sync.OnceFunc(func() { <-slots })
			time.AfterFunc(30*time.Second, s.release)
		} else {
			s.release = func() {}
		}
		if ctx.Err() != nil {
			break
		}
		f.started.Add(1)
		wg.Go(func() {
			if err := s.a.Run(ctx); err != nil && cfg.Log != nil {
				cfg.Log.Error("agent stopped", "device_id", s.a.DeviceID(), "err", err)
			}
		})
	}
	wg.Wait()
	if cfg.AckedOut != nil {
		w := bufio.NewWriter(cfg.AckedOut)
		for _, s := range agents {
			for _, id := range s.acked {
				fmt.Fprintf(w, "%s %s\n", s.a.DeviceID(), id)
			}
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
	st := f.snapshot()
	st.Final = true
	f.write(st)
	return nil
}

func (s *simAgent) onSent(id string) {
	s.mu.Lock()
	s.sent[id] = time.Now()
	s.mu.Unlock()
	s.f.sent.Add(1)
}

func (s *simAgent) onAcked(id string) {
	now := time.Now()
	s.mu.Lock()
	at, ok := s.sent[id]
	delete(s.sent, id)
	if ok {
		// Only frames the agent reported as written: the hello's
		// acknowledgement reaches the observer too.
		s.acked = append(s.acked, id)
	}
	s.mu.Unlock()
	if ok {
		s.f.acked.Add(1)
		s.f.latMu.Lock()
		s.f.lat = append(s.f.lat, now.Sub(at))
		s.f.ackAt = append(s.f.ackAt, now)
		if s.f.firstAck.IsZero() {
			s.f.firstAck = now
		}
		s.f.lastAck = now
		s.f.latMu.Unlock()
	}
}

func (f *fleet) snapshot() Stats {
	return Stats{T: time.Now().UnixMilli(), Process: f.cfg.Process, Agents: f.cfg.Count, Started: f.started.Load(),
		Connected: f.up.Load(), Connects: f.connects.Load(), Drops: f.drops.Load(), Failed: f.failed.Load(),
		Refused: f.refused.Load(), Sent: f.sent.Load(), Acked: f.acked.Load(), Commands: f.commands.Load()}
}

func (f *fleet) write(v any) {
	b, _ := json.Marshal(v)
	f.outMu.Lock()
	defer f.outMu.Unlock()
	f.cfg.Out.Write(append(b, '\n'))
}

func (f *fleet) stats(ctx context.Context) {
	t := time.NewTicker(f.cfg.StatsEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f.write(f.snapshot())
		}
	}
}

func (f *fleet) control(ctx context.Context, stop context.CancelFunc, agents []*simAgent) {
	sc := bufio.NewScanner(f.cfg.Control)
	for sc.Scan() && ctx.Err() == nil {
		cmd, arg, _ := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		switch cmd {
		case "report":
			for _, s := range agents {
				s.a.ReportNow()
			}
		case "mark":
			f.write(f.mark(arg))
		case "stop":
			stop()
		}
	}
	// End of input is not a stop: run by hand with stdin closed, the
	// simulator still runs for its duration.
}

func (f *fleet) mark(name string) Mark {
	f.latMu.Lock()
	lat, ackAt, first, last := f.lat, f.ackAt, f.firstAck, f.lastAck
	f.lat, f.ackAt, f.firstAck, f.lastAck = nil, nil, time.Time{}, time.Time{}
	f.latMu.Unlock()
	m := Mark{T: time.Now().UnixMilli(), Process: f.cfg.Process, Mark: name, Acks: len(lat)}
	if len(lat) > 0 {
		slices.Sort(lat)
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		m.P50ms, m.P99ms, m.MaxMs = ms(lat[len(lat)/2]), ms(lat[len(lat)*99/100]), ms(lat[len(lat)-1])
		m.FirstMs, m.LastMs = first.UnixMilli(), last.UnixMilli()
		m.At99Ms = ackAt[len(ackAt)*99/100].UnixMilli() // in order: appended as they came
	}
	return m
}

// onConnected and onEnded count sessions from the agent's own observer:
// the server acknowledged a session's hello, or an attempt or session
// ended before the agent's next retry.
func (s *simAgent) onConnected(bool) {
	if !s.up.Swap(true) {
		s.f.up.Add(1)
		s.f.connects.Add(1)
	}
	if s.release != nil {
		s.release()
	}
}

func (s *simAgent) onEnded(_ bool, err error) {
	if s.up.Swap(false) {
		s.f.up.Add(-1)
		s.f.drops.Add(1)
		return
	}
	s.f.failed.Add(1)
	if err != nil && strings.Contains(err.Error(), "connection refused") {
		s.f.refused.Add(1)
	}
}

// errorsOnly is each agent's log handler: the agent's errors go to the
// simulator's log, the rest is dropped (20,000 agents' info lines would
// cost more than the agents).
type errorsOnly struct{ log *slog.Logger }

func (w *errorsOnly) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelError }

func (w *errorsOnly) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError && w.log != nil {
		return w.log.Handler().Handle(ctx, r)
	}
	return nil
}

func (w *errorsOnly) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *errorsOnly) WithGroup(string) slog.Handler      { return w }
