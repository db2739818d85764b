// Package audit writes and verifies Cordon's append-only audit log. Every
// entry carries the SHA-256 of the previous one, so altering, removing or
// reordering a row is detected by Verify.
package audit

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/cordon-mdm/cordon/enroll"
	"github.com/cordon-mdm/cordon/internal/auditchain"
	"github.com/cordon-mdm/cordon/server/store"
)

// Outcomes.
const (
	Success = "success"
	Failure = "failure"
	Denied  = "denied"
)

// Actions recorded by this features. Later features add theirs.
const (
	TokenCreated    = enroll.ActionTokenCreated
	EnrollSucceeded = enroll.ActionEnrolled
	EnrollRefused   = enroll.ActionRefused
	CertIssued      = enroll.ActionCertIssued
	CertRenewed     = "certificate.renewed"
	CertRevoked     = "certificate.revoked"
	APIKeyCreated   = "api_key.created"
	UserCreated     = "user.created"
	// PasswordChanged is also written, outcome failure, for a refused one.
	PasswordChanged    = "user.password_changed"
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

// Log records entries.
type Log struct {
	store Store
	log   *slog.Logger
	now   func() time.Time
	// anchor, when set (NewAnchor), anchors Verify on signed checkpoints.
	anchor *Anchor
}

// SetClock replaces the clock entries are timed by (tests: a year of
// entries for the retention without waiting a year).
func (l *Log) SetClock(now func() time.Time) { l.now = now }

// Option configures a Log.
type Option func(*Log)

// WithClock replaces the clock entries are stamped with (tests: a
// fixture week of entries for the audit review).
func WithClock(now func() time.Time) Option { return func(l *Log) { l.now = now } }

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

// Record appends e. A failure to audit is returned so that callers of
// security-relevant actions can refuse to proceed without a trail.
func (l *Log) Record(ctx context.Context, e Entry) error {
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
	err := l.store.AppendAudit(ctx, row, func(r *store.AuditEntry) { r.Hash = Hash(r) })
	if err != nil {
		l.log.Error("audit append failed", "action", e.Action, "target", e.Target, "err", err)
		return fmt.Errorf("audit: %w", err)
	}
	return nil
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
