// Package audit writes and verifies Cordon's append-only audit log. Every
// entry carries the SHA-256 of the previous one, so altering, removing or
// reordering a row is detected by Verify.
package audit

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cordon-mdm/cordon/internal/auditchain"
	"github.com/cordon-mdm/cordon/internal/timefmt"
	"github.com/cordon-mdm/cordon/server/store"
)

// Outcomes.
const (
	Success = "success"
	Failure = "failure"
	Denied  = "denied"
)

// Actions written by more than one part of the server. A service that
// alone writes an action declares it itself (enroll.ActionEnrolled,
// accounts.ActionDisabled): audit imports no service, so that everything
// may import audit.
const (
	CertRenewed        = "certificate.renewed"
	CertRevoked        = "certificate.revoked"
	DeviceConnected    = "device.connected"
	DeviceRefused      = "device.refused"
	DeviceDisconnected = "device.disconnected"
	GatewayStopped     = "gateway.stopped"
	ServerStarted      = "server.started"
	APIDenied          = "api.denied"
	// GuessesRefused is one source's refused token or API key guesses
	// over one rate-limit window (details: refused, failures, limit).
	GuessesRefused = "auth.guesses_refused"
)

// Reads of the trail itself (AU-2), each with the filter used (details:
// action, target, after or before, limit, entries, via api or console).
// The pages of one export that follow each other (after= the last entry
// the server returned to the same caller for the same filter, within 10
// minutes) make one TrailRead.
const (
	TrailRead     = "audit.read"
	TrailVerified = "audit.verified"
)

// DeviceClockSkew: a report's time was not believed (more than
// protocol.MaxClockSkew ahead of its receipt, or before enrollment) and
// the report was kept at its receive time; once per connection.
const DeviceClockSkew = "device.clock_skew"

// Failed is written once appending works again after it failed (AU-5):
// how many entries were lost, the first and last failure, and which
// actions they were (details: failures, first, last, actions, error).
const Failed = "audit.failed"

// ErrUnavailable: the entry could not be written, so the change it would
// have recorded was refused (AU-5). The edges answer 503.
var ErrUnavailable = errors.New("the audit trail cannot be written; the change was refused")

// Entry is what a caller records.
type Entry struct {
	Actor   string // "apikey:<name>", "device:<id>", "local:<user>", "anonymous"
	Source  string // remote address or "local"
	Action  string
	Target  string
	Outcome string
	Details map[string]string
}

// Store is the persistence the log needs.
type Store interface {
	AppendAudit(ctx context.Context, e *store.AuditEntry, seal func(*store.AuditEntry)) error
	WalkAudit(ctx context.Context, fn func(*store.AuditEntry) error) error
	AuditHeadSeq(ctx context.Context) (int64, string, error)
}

// Appender appends one entry under the chain's head lock: the Store
// itself, or a store bound to the caller's transaction (store.Store.InTx),
// so that a change and its entry commit together.
type Appender interface {
	AppendAudit(ctx context.Context, e *store.AuditEntry, seal func(*store.AuditEntry)) error
}

// Alarm tells people that the audit trail cannot be written. It returns
// an error when nobody could be told, and is called again on the next
// Sweep until it succeeds.
type Alarm interface {
	AuditFailing(ctx context.Context, f Outage) error
}

// Outage summarises the appends that failed since writing last worked.
type Outage struct {
	Count       int
	First, Last time.Time
	// Actions counts the failed entries per action.
	Actions map[string]int
	Err     string // the last error
}

// ActionList is "action×n, ..." in name order.
func (f Outage) ActionList() string {
	names := make([]string, 0, len(f.Actions))
	for a := range f.Actions {
		names = append(names, a)
	}
	sort.Strings(names)
	for i, a := range names {
		names[i] = a + "×" + strconv.Itoa(f.Actions[a])
	}
	return strings.Join(names, ", ")
}

// Log records entries.
type Log struct {
	store Store
	log   *slog.Logger
	now   func() time.Time
	// anchor, when set (NewAnchor), anchors Verify on signed checkpoints.
	anchor *Anchor
	alarm  Alarm

	mu sync.Mutex
	// failing is the current run of failed appends (nil when writing
	// works); alert is the summary still to be told to people, alerted
	// says the current run has been told.
	failing  *Outage
	alert    *Outage
	alerted  bool
	total    uint64
	alarming sync.Mutex
}

// SetClock replaces the clock entries are timed by (tests: a year of
// entries for the retention without waiting a year).
func (l *Log) SetClock(now func() time.Time) { l.now = now }

// Option configures a Log.
type Option func(*Log)

// WithClock replaces the clock entries are stamped with (tests: a
// fixture week of entries for the audit review).
func WithClock(now func() time.Time) Option { return func(l *Log) { l.now = now } }

// WithAlarm sets who is told when appends fail.
func WithAlarm(a Alarm) Option { return func(l *Log) { l.alarm = a } }

// New returns a Log over st.
func New(st Store, logger *slog.Logger, opts ...Option) *Log {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	l := &Log{store: st, log: logger, now: time.Now}
	for _, o := range opts {
		o(l)
	}
	return l
}

// SetAlarm sets the alarm after construction: the notifier that raises
// it is built after the Log it serves.
func (l *Log) SetAlarm(a Alarm) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.alarm = a
}

// Failures is how many appends have failed since the server started
// (the Prometheus counter cordon_audit_write_failures_total).
func (l *Log) Failures() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

// Record appends e in its own transaction. A failure to audit is
// returned, wrapping ErrUnavailable, so that callers of security-relevant
// actions can refuse to proceed without a trail; it is counted and
// raises the alarm.
func (l *Log) Record(ctx context.Context, e Entry) error {
	return l.record(ctx, l.store, e, true)
}

// RecordTx appends e through tx, the caller's transaction: the entry
// commits with the change or neither does. An error wraps ErrUnavailable;
// the caller returns it so that the transaction rolls back.
func (l *Log) RecordTx(ctx context.Context, tx Appender, e Entry) error {
	return l.record(ctx, tx, e, true)
}

func (l *Log) record(ctx context.Context, app Appender, e Entry, track bool) error {
	details := ""
	if len(e.Details) > 0 {
		b, err := json.Marshal(e.Details) // map keys marshal sorted: stable
		if err != nil {
			return err
		}
		details = string(b)
	}
	row := &store.AuditEntry{
		// Microseconds: PostgreSQL keeps no more, and the hash must
		// survive the round trip.
		Time:    l.now().UTC().Truncate(time.Microsecond),
		Actor:   e.Actor,
		Source:  e.Source,
		Action:  e.Action,
		Target:  e.Target,
		Outcome: e.Outcome,
		Details: details,
	}
	err := app.AppendAudit(ctx, row, func(r *store.AuditEntry) { r.Hash = Hash(r) })
	if err != nil {
		l.log.Error("audit append failed", "action", e.Action, "target", e.Target, "err", err)
		// A caller that gave up (a closed request, shutdown) is not a
		// trail that cannot be written: no count, no alarm.
		if track && ctx.Err() == nil {
			l.failed(ctx, e.Action, row.Time, err)
		}
		return fmt.Errorf("%w: %s: %v", ErrUnavailable, e.Action, err)
	}
	return nil
}

// failed counts a failed append and, on the first of a run, raises the
// alarm at once (the sweep retries it until someone was told).
func (l *Log) failed(ctx context.Context, action string, at time.Time, err error) {
	l.mu.Lock()
	l.total++
	if l.failing == nil {
		l.failing = &Outage{First: at, Actions: map[string]int{}}
	}
	f := l.failing
	f.Count++
	f.Last = at
	f.Actions[action]++
	f.Err = err.Error()
	raise := !l.alerted && l.alert == nil
	if raise {
		snap := *f
		snap.Actions = maps(f.Actions)
		l.alert = &snap
		l.alerted = true
	}
	l.mu.Unlock()
	if raise {
		go l.raise(context.WithoutCancel(ctx))
	}
}

func maps(m map[string]int) map[string]int {
	c := make(map[string]int, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// raise tells the alarm about the pending alert, once at a time.
func (l *Log) raise(ctx context.Context) {
	if !l.alarming.TryLock() {
		return
	}
	defer l.alarming.Unlock()
	l.mu.Lock()
	a, f := l.alarm, l.alert
	l.mu.Unlock()
	if a == nil || f == nil {
		return
	}
	if err := a.AuditFailing(ctx, *f); err != nil {
		l.log.Error("audit failure alarm not raised; will retry", "err", err)
		return
	}
	l.mu.Lock()
	if l.alert == f {
		l.alert = nil
	}
	l.mu.Unlock()
}

// Sweep retries a pending alarm and, once appending works again, writes
// one audit.failed entry summarising the run of failures. The server
// runs it on its sweep.
func (l *Log) Sweep(ctx context.Context) {
	l.raise(ctx)
	l.mu.Lock()
	if l.failing == nil {
		l.mu.Unlock()
		return
	}
	f := *l.failing
	f.Actions = maps(l.failing.Actions)
	l.mu.Unlock()
	err := l.record(ctx, l.store, Entry{Actor: "server", Source: "local", Action: Failed, Target: "audit", Outcome: Failure,
		Details: map[string]string{"failures": strconv.Itoa(f.Count), "first": timefmt.JSON(f.First),
			"last": timefmt.JSON(f.Last), "actions": f.ActionList(), "error": f.Err}}, false)
	if err != nil {
		return // still failing: the run goes on
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	rest := l.failing
	rest.Count -= f.Count
	for a, n := range f.Actions {
		if rest.Actions[a] -= n; rest.Actions[a] <= 0 {
			delete(rest.Actions, a)
		}
	}
	if rest.Count <= 0 {
		// The run is over: the next failure starts a new one and alerts.
		l.failing, l.alerted = nil, false
	} else {
		rest.First = f.Last
	}
}

// Hash is the chain hash of an entry: SHA-256 over a canonical JSON
// encoding of every field except Hash itself (see internal/auditchain,
// which the offline verifier shares).
func Hash(e *store.AuditEntry) string { return auditchain.Hash(chainEntry(e)) }

func chainEntry(e *store.AuditEntry) auditchain.Entry {
	return auditchain.Entry{Seq: e.Seq, Time: e.Time, Actor: e.Actor, Source: e.Source, Action: e.Action,
		Target: e.Target, Outcome: e.Outcome, Details: e.Details, PrevHash: e.PrevHash, Hash: e.Hash}
}

// VerifyResult is the answer of Verify, also the JSON of the API.
type VerifyResult = auditchain.Result

// Verify walks the whole chain and names the first entry that does not
// match: altered content, a broken link, a gap, or a truncated tail.
// With an Anchor the chain is also checked against every signed
// checkpoint (AU-9): a database writer who rewrites a row and recomputes
// every later hash and the head no longer meets the checkpoints signed
// before, and the oldest entry left after pruning must link to one.
func (l *Log) Verify(ctx context.Context) (VerifyResult, error) {
	var (
		cps []auditchain.Checkpoint
		pub ed25519.PublicKey
	)
	// Checkpoints before the head: every checkpoint read is then at or
	// below the head, and one beyond it can only mean a truncation.
	if l.anchor != nil {
		var err error
		if cps, err = l.anchor.Checkpoints(ctx); err != nil {
			return VerifyResult{}, err
		}
		pub = l.anchor.PublicKey()
	}
	// The head is read next: entries appended while we walk are beyond
	// it and are left for the next verification instead of racing it.
	headSeq, headHash, err := l.store.AuditHeadSeq(ctx)
	if err != nil {
		return VerifyResult{}, err
	}
	v := auditchain.NewVerifier(pub, cps)
	err = l.store.WalkAudit(ctx, func(e *store.AuditEntry) error {
		if !v.Broken() && e.Seq <= headSeq {
			v.Add(chainEntry(e))
		}
		return nil
	})
	if err != nil {
		return VerifyResult{}, err
	}
	return v.Finish(headSeq, headHash, true), nil
}
