// Package audit writes and verifies Cordon's append-only audit log. Every
// entry carries the SHA-256 of the previous one, so altering, removing or
// reordering a row is detected by Verify.
package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/cordon-mdm/cordon/enroll"
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
}

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
// encoding of every field except Hash itself.
func Hash(e *store.AuditEntry) string {
	canon := struct {
		Seq      int64  `json:"seq"`
		Time     string `json:"time"`
		Actor    string `json:"actor"`
		Source   string `json:"source"`
		Action   string `json:"action"`
		Target   string `json:"target"`
		Outcome  string `json:"outcome"`
		Details  string `json:"details"`
		PrevHash string `json:"prev_hash"`
	}{e.Seq, e.Time.UTC().Format(time.RFC3339Nano), e.Actor, e.Source, e.Action, e.Target, e.Outcome, e.Details, e.PrevHash}
	b, _ := json.Marshal(canon) // a struct of strings cannot fail to marshal
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// VerifyResult is the answer of Verify, also the JSON of the API.
type VerifyResult struct {
	OK      bool   `json:"ok"`
	Entries int64  `json:"entries"`
	Broken  *int64 `json:"broken_seq,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// Verify walks the whole chain and names the first entry that does not
// match: altered content, a broken link, a gap, or a truncated tail.
func (l *Log) Verify(ctx context.Context) (VerifyResult, error) {
	var (
		res      VerifyResult
		prevHash string
		want     int64 = 1
	)
	fail := func(seq int64, reason string) {
		res.Broken, res.Reason = &seq, reason
	}
	// The head is read first: entries appended while we walk are beyond it
	// and are left for the next verification instead of racing it.
	headSeq, headHash, err := l.store.AuditHeadSeq(ctx)
	if err != nil {
		return res, err
	}
	err = l.store.WalkAudit(ctx, func(e *store.AuditEntry) error {
		if res.Broken != nil || e.Seq > headSeq {
			return nil
		}
		switch {
		case e.Seq != want:
			fail(want, fmt.Sprintf("entry %d is missing (next present is %d)", want, e.Seq))
		case e.PrevHash != prevHash:
			fail(e.Seq, fmt.Sprintf("entry %d does not link to entry %d", e.Seq, e.Seq-1))
		case Hash(e) != e.Hash:
			fail(e.Seq, fmt.Sprintf("entry %d was altered: its content does not match its hash", e.Seq))
		default:
			res.Entries++
			prevHash = e.Hash
			want++
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	if res.Broken == nil {
		if headSeq != res.Entries || headHash != prevHash {
			fail(res.Entries+1, fmt.Sprintf("the log ends at entry %d but %d entries were written", res.Entries, headSeq))
		}
	}
	res.OK = res.Broken == nil
	return res, nil
}
