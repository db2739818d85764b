// Package releases keeps the agent builds the server can roll out
// (cordon-server agent-release add) and the staged rollouts that issue
// update commands for them. A build is a file in the data dir named by
// its SHA-256 and a row saying what it is; an enrolled device fetches it
// over its mutual-TLS channel (ServeRelease, on the agent listener), and
// checks the hash the signed update command carries.
package releases

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cordon-mdm/cordon/internal/atomicfile"
	"github.com/cordon-mdm/cordon/internal/httpjson"
	"github.com/cordon-mdm/cordon/internal/version"
	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/commands"
	"github.com/cordon-mdm/cordon/server/store"
)

// Audit actions this package records. The update's own steps (issued,
// completed, failed, rolled back) are the command queue's entries
// (command.requested, command.delivered, command.completed).
const (
	ActionReleaseAdded   = "agent_release.added"
	ActionReleaseRefused = "agent_release.refused"
	ActionReleaseFetched = "agent_release.fetched"
	ActionRolloutCreated = "agent_rollout.created"
	ActionRolloutRefused = "agent_rollout.refused"
)

// Dir is where, in the data dir, release files are kept.
const Dir = "agent-releases"

// Errors the API and the CLI map to answers.
var (
	ErrInvalid   = errors.New("invalid agent release")
	ErrDuplicate = errors.New("agent release already kept")
	ErrDowngrade = errors.New("rollout would downgrade devices")
	ErrForbidden = errors.New("forbidden")
)

// Store is the persistence releases and rollouts need.
type Store interface {
	InTx(ctx context.Context, fn func(tx *store.Store) error) error
	GetAgentRelease(ctx context.Context, sha256 string) (*store.AgentRelease, error)
	FindAgentRelease(ctx context.Context, ver, goos, arch string) (*store.AgentRelease, error)
	ListAgentReleases(ctx context.Context) ([]store.AgentRelease, error)
	LatestAgentRelease(ctx context.Context, goos, arch string) (*store.AgentRelease, error)
	ListAgentRollouts(ctx context.Context) ([]store.AgentRollout, error)
	CurrentAgentRollouts(ctx context.Context) ([]store.AgentRollout, error)
	RolloutCandidates(ctx context.Context, rolloutID, platform string) ([]store.RolloutCandidate, error)
	RolloutCommandCounts(ctx context.Context, rolloutID string) (map[string]int64, error)
	AgentVersionSpread(ctx context.Context) ([]store.VersionCount, error)
}

// Auditor records security events, within the change's transaction.
type Auditor interface {
	Record(ctx context.Context, e audit.Entry) error
	RecordTx(ctx context.Context, tx audit.Appender, e audit.Entry) error
}

// Updater issues update commands (*commands.Service).
type Updater interface {
	IssueUpdate(ctx context.Context, r commands.UpdateRequest) (*store.Command, error)
}

// Service keeps releases and runs rollouts.
type Service struct {
	store    Store
	audit    Auditor
	dir      string // <data>/agent-releases
	updater  Updater
	deadline time.Duration
	log      *slog.Logger
	now      func() time.Time
}

// Option configures a Service.
type Option func(*Service)

// WithUpdater lets rollouts issue update commands (serve; the host's
// agent-release commands need none).
func WithUpdater(u Updater) Option { return func(s *Service) { s.updater = u } }

// WithDeadline sets how long a new build has to connect before the old
// one comes back (default 5 minutes).
func WithDeadline(d time.Duration) Option { return func(s *Service) { s.deadline = d } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(s *Service) { s.log = l } }

// New returns a Service keeping its files under dataDir.
func New(st Store, auditor Auditor, dataDir string, opts ...Option) *Service {
	s := &Service{store: st, audit: auditor, dir: filepath.Join(dataDir, Dir), deadline: 5 * time.Minute,
		log: slog.New(slog.DiscardHandler), now: time.Now}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Deadline is the rollback deadline update commands carry.
func (s *Service) Deadline() time.Duration { return s.deadline }

// AddRequest is a build to keep.
type AddRequest struct {
	File              io.Reader
	Version, OS, Arch string
	Actor, Source     string
}

// Add validates a build, writes its file (synced, renamed into place,
// 0600) and stores its row with an agent_release.added entry in one
// transaction. A refusal is audited and keeps nothing.
func (s *Service) Add(ctx context.Context, r AddRequest) (*store.AgentRelease, error) {
	refuse := func(err error) (*store.AgentRelease, error) {
		s.audit.Record(ctx, audit.Entry{Actor: r.Actor, Source: r.Source, Action: ActionReleaseRefused, Target: "agent_release",
			Outcome: audit.Failure, Details: map[string]string{"version": trunc(r.Version), "os": trunc(r.OS), "arch": trunc(r.Arch), "reason": err.Error()}})
		return nil, err
	}
	if err := version.Check(r.Version); err != nil {
		return refuse(fmt.Errorf("%w: %v", ErrInvalid, err))
	}
	if err := protocol.CheckPlatform(r.OS, r.Arch); err != nil {
		return refuse(fmt.Errorf("%w: %v", ErrInvalid, errors.Unwrap(err)))
	}
	if _, err := s.store.FindAgentRelease(ctx, r.Version, r.OS, r.Arch); err == nil {
		return refuse(fmt.Errorf("%w: version %s for %s/%s", ErrDuplicate, r.Version, r.OS, r.Arch))
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return nil, err
	}
	tmp, sum, size, err := s.writeTemp(r.File)
	if err != nil {
		if errors.Is(err, ErrInvalid) {
			return refuse(err)
		}
		return nil, err
	}
	defer os.Remove(tmp)
	if _, err := s.store.GetAgentRelease(ctx, sum); err == nil {
		return refuse(fmt.Errorf("%w: the same file is already kept (sha256 %s)", ErrDuplicate, sum))
	}
	rel := &store.AgentRelease{SHA256: sum, Version: r.Version, OS: r.OS, Arch: r.Arch, Size: size,
		AddedAt: s.now().UTC().Truncate(time.Microsecond), AddedBy: r.Actor}
	final := filepath.Join(s.dir, sum)
	// The file is in place before its row commits: a row always names a
	// file. A file whose row failed is removed again.
	if err := os.Rename(tmp, final); err != nil {
		return nil, err
	}
	atomicfile.SyncDir(s.dir)
	err = s.store.InTx(ctx, func(tx *store.Store) error {
		if err := tx.AddAgentRelease(ctx, rel); err != nil {
			return err
		}
		return s.audit.RecordTx(ctx, tx, audit.Entry{Actor: r.Actor, Source: r.Source, Action: ActionReleaseAdded,
			Target: "agent_release:" + sum, Outcome: audit.Success, Details: map[string]string{"version": rel.Version,
				"os": rel.OS, "arch": rel.Arch, "sha256": sum, "size": strconv.FormatInt(size, 10)}})
	})
	if err != nil {
		os.Remove(final)
		if errors.Is(err, store.ErrConflict) {
			return refuse(fmt.Errorf("%w: version %s for %s/%s", ErrDuplicate, r.Version, r.OS, r.Arch))
		}
		return nil, err
	}
	return rel, nil
}

// writeTemp copies a build into a synced temporary file beside its
// final place, hashing it on the way.
func (s *Service) writeTemp(src io.Reader) (path, sum string, size int64, err error) {
	f, err := os.CreateTemp(s.dir, ".tmp-release-*")
	if err != nil {
		return "", "", 0, err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err = f.Chmod(0o600); err != nil {
		return "", "", 0, err
	}
	h := sha256.New()
	size, err = io.Copy(io.MultiWriter(f, h), io.LimitReader(src, protocol.MaxReleaseBytes+1))
	if err != nil {
		return "", "", 0, err
	}
	if size == 0 || size > protocol.MaxReleaseBytes {
		return "", "", 0, fmt.Errorf("%w: the file must hold between 1 and %d bytes", ErrInvalid, protocol.MaxReleaseBytes)
	}
	if err = f.Sync(); err != nil {
		return "", "", 0, err
	}
	if err = f.Close(); err != nil {
		return "", "", 0, err
	}
	return f.Name(), hex.EncodeToString(h.Sum(nil)), size, nil
}

// List returns every release kept.
func (s *Service) List(ctx context.Context) ([]store.AgentRelease, error) {
	return s.store.ListAgentReleases(ctx)
}

// LatestAgentRelease is the highest version kept for os and arch
// (store.ErrNotFound when none): what an enrollment package takes.
func (s *Service) LatestAgentRelease(ctx context.Context, goos, arch string) (*store.AgentRelease, error) {
	return s.store.LatestAgentRelease(ctx, goos, arch)
}

// Open opens a release's file; the caller closes it. It does not check
// the file against its hash: whoever uses it must (the agent does).
func (s *Service) Open(ctx context.Context, sha256 string) (*os.File, *store.AgentRelease, error) {
	if protocol.CheckSHA256(sha256) != nil {
		return nil, nil, store.ErrNotFound
	}
	rel, err := s.store.GetAgentRelease(ctx, sha256)
	if err != nil {
		return nil, nil, err
	}
	f, err := os.Open(filepath.Join(s.dir, rel.SHA256))
	if err != nil {
		return nil, nil, fmt.Errorf("agent release %s: %w", rel.SHA256, err)
	}
	return f, rel, nil
}

// ServeRelease answers an enrolled device's GET of ReleasePathPrefix +
// sha256 on the agent listener (the gateway has checked its certificate
// and that it is not revoked), with an agent_release.fetched entry. The
// file is sent as stored: the device checks it against the hash in its
// signed command, so a file altered on the server's disk is refused
// there.
func (s *Service) ServeRelease(w http.ResponseWriter, r *http.Request, deviceID, remote string) {
	if r.Method != http.MethodGet {
		httpjson.Error(w, http.StatusMethodNotAllowed, "GET only")
		return
	}
	sum := strings.TrimPrefix(r.URL.Path, protocol.ReleasePathPrefix)
	f, rel, err := s.Open(r.Context(), sum)
	entry := audit.Entry{Actor: "device:" + deviceID, Source: remote, Action: ActionReleaseFetched,
		Target: "agent_release:" + trunc(sum), Outcome: audit.Success, Details: map[string]string{}}
	if err != nil {
		entry.Outcome, entry.Details["reason"] = audit.Failure, "no such release"
		status := http.StatusNotFound
		if !errors.Is(err, store.ErrNotFound) {
			s.log.Error("open agent release", "sha256", sum, "err", err)
			entry.Details["reason"], status = "release file unreadable", http.StatusInternalServerError
		}
		s.audit.Record(r.Context(), entry)
		httpjson.Error(w, status, entry.Details["reason"])
		return
	}
	defer f.Close()
	entry.Details["version"], entry.Details["os"], entry.Details["arch"] = rel.Version, rel.OS, rel.Arch
	// The fetch is in the trail before a byte is sent (AU-5).
	if err := s.audit.Record(r.Context(), entry); err != nil {
		httpjson.Error(w, http.StatusServiceUnavailable, "audit trail unavailable")
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, "", rel.AddedAt, f)
}

func trunc(s string) string {
	if len(s) > 64 {
		return s[:64]
	}
	return s
}
