package audit

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/cordon-mdm/cordon/internal/auditchain"
	"github.com/cordon-mdm/cordon/internal/keyfile"
	"github.com/cordon-mdm/cordon/server/store"
)

// Files in the data dir (AU-9): the checkpoint key is never in the
// database, and the checkpoint file is outside the database's reach.
const (
	CheckpointKeyFile = "audit-checkpoint.key"
	CheckpointsFile   = "audit-checkpoints.jsonl"
)

// Retention (AU-11): one year is the CJIS floor and the default.
const (
	MinRetention     = 8760 * time.Hour
	DefaultRetention = MinRetention
)

// Pruned: entries older than the retention were removed up to a signed
// checkpoint (details: removed, through_seq, checkpoint_time, cutoff,
// retention).
const Pruned = "audit.pruned"

// ErrNoCheckpointKey: the data dir has no checkpoint key yet (serve
// creates it on first start).
var ErrNoCheckpointKey = errors.New("no audit checkpoint key in the data dir: start cordon-server serve once to create it")

// CheckpointStore is what checkpoints and pruning need of the database.
type CheckpointStore interface {
	AuditHeadSeq(ctx context.Context) (int64, string, error)
	store.AuditCheckpointStore
	// LatestAuditCheckpoint is read at scrape (metrics.go).
	LatestAuditCheckpoint(ctx context.Context) (*store.AuditCheckpoint, error)
}

// Anchor signs checkpoints of a Log's chain and anchors its
// verification on them; it also prunes entries past the retention.
type Anchor struct {
	log  *Log
	st   CheckpointStore
	key  ed25519.PrivateKey
	path string
	now  func() time.Time
	mu   sync.Mutex
}

// AnchorOption configures an Anchor.
type AnchorOption func(*Anchor)

// WithAnchorClock replaces the clock checkpoints and pruning run on
// (tests: a year of entries without waiting a year).
func WithAnchorClock(now func() time.Time) AnchorOption { return func(a *Anchor) { a.now = now } }

// NewAnchor loads the checkpoint key from dataDir, creating it (0600)
// when create is set and it does not exist, and makes l verify against
// the checkpoints. The host commands pass create false: only serve makes
// the key, so two processes never race to make two.
func NewAnchor(l *Log, st CheckpointStore, dataDir string, create bool, opts ...AnchorOption) (*Anchor, error) {
	key, err := loadKey(filepath.Join(dataDir, CheckpointKeyFile), create)
	if err != nil {
		return nil, err
	}
	a := &Anchor{log: l, st: st, key: key, path: filepath.Join(dataDir, CheckpointsFile), now: time.Now}
	for _, o := range opts {
		o(a)
	}
	l.anchor = a
	return a, nil
}

func loadKey(path string, create bool) (ed25519.PrivateKey, error) {
	k, err := keyfile.Ed25519(path, create)
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNoCheckpointKey
	}
	return k, err
}

// PublicKey verifies the checkpoints.
func (a *Anchor) PublicKey() ed25519.PublicKey { return a.key.Public().(ed25519.PublicKey) }

// PublicKeyPEM is PublicKey as PEM, what `cordonctl audit verify --key`
// reads.
func (a *Anchor) PublicKeyPEM() string { return auditchain.PublicKeyPEM(a.PublicKey()) }

// Checkpoint signs the chain's head now, unless it is empty or the
// newest checkpoint already covers it (then that one is returned). The
// checkpoint goes to the file first (fsync'd), then to the database.
func (a *Anchor) Checkpoint(ctx context.Context) (auditchain.Checkpoint, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	seq, hash, err := a.st.AuditHeadSeq(ctx)
	if err != nil {
		return auditchain.Checkpoint{}, err
	}
	cps, err := a.Checkpoints(ctx)
	if err != nil {
		return auditchain.Checkpoint{}, err
	}
	if n := len(cps); n > 0 && cps[n-1].Seq >= seq {
		return cps[n-1], nil
	}
	if seq == 0 {
		return auditchain.Checkpoint{}, errors.New("the audit log is empty: nothing to checkpoint")
	}
	c := auditchain.Sign(a.key, seq, hash, a.now())
	if err := a.appendFile(c); err != nil {
		return c, fmt.Errorf("audit checkpoint file: %w", err)
	}
	err = a.st.SaveAuditCheckpoint(ctx, &store.AuditCheckpoint{Seq: c.Seq, Hash: c.Hash, Time: c.Time,
		Signature: base64.StdEncoding.EncodeToString(c.Signature)})
	if err != nil {
		return c, fmt.Errorf("audit checkpoint: %w", err)
	}
	return c, nil
}

func (a *Anchor) appendFile(c auditchain.Checkpoint) error {
	line, err := json.Marshal(c)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(a.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// FileCheckpoints reads the checkpoint file (none when it does not
// exist yet).
func (a *Anchor) FileCheckpoints() ([]auditchain.Checkpoint, error) {
	f, err := os.Open(a.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var cps []auditchain.Checkpoint
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var c auditchain.Checkpoint
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			return nil, fmt.Errorf("%s line %d: %w", a.path, n, err)
		}
		cps = append(cps, c)
	}
	return cps, sc.Err()
}

// Checkpoints are the file's checkpoints and the database's, oldest
// first. Both are checked by signature when verifying: the database's
// copy adds nothing a database writer could forge, and deleting it takes
// nothing away.
func (a *Anchor) Checkpoints(ctx context.Context) ([]auditchain.Checkpoint, error) {
	cps, err := a.FileCheckpoints()
	if err != nil {
		return nil, err
	}
	rows, err := a.st.ListAuditCheckpoints(ctx)
	if err != nil {
		return nil, err
	}
	inFile := map[int64]bool{}
	for _, c := range cps {
		inFile[c.Seq] = true
	}
	for _, r := range rows {
		if inFile[r.Seq] {
			// The file's is the one trusted; a different row at the same
			// seq is still checked, and then disagrees.
			if c := fromRow(r); !containsSame(cps, c) {
				cps = append(cps, c)
			}
			continue
		}
		cps = append(cps, fromRow(r))
	}
	sort.SliceStable(cps, func(i, j int) bool { return cps[i].Seq < cps[j].Seq })
	return cps, nil
}

func containsSame(cps []auditchain.Checkpoint, c auditchain.Checkpoint) bool {
	for _, x := range cps {
		if x.Seq == c.Seq && x.Hash == c.Hash && x.Time.Equal(c.Time) && string(x.Signature) == string(c.Signature) {
			return true
		}
	}
	return false
}

func fromRow(r store.AuditCheckpoint) auditchain.Checkpoint {
	sig, _ := base64.StdEncoding.DecodeString(r.Signature) // a bad one fails verification
	return auditchain.Checkpoint{Seq: r.Seq, Hash: r.Hash, Time: r.Time.UTC(), Signature: sig}
}

// PruneResult says what Prune did.
type PruneResult struct {
	Removed    int64
	ThroughSeq int64
}

// Prune removes the entries older than retention, but only up to the
// newest signed checkpoint all of whose entries are older, so that the
// oldest entry left links to a checkpoint and the chain still verifies
// (AU-11). It refuses a retention under MinRetention, and it prunes
// nothing from a chain that does not verify: that would destroy the
// evidence. The prune is audited (audit.pruned).
func (a *Anchor) Prune(ctx context.Context, retention time.Duration) (PruneResult, error) {
	if retention < MinRetention {
		return PruneResult{}, fmt.Errorf("audit retention %v is shorter than the one-year floor (8760h)", retention)
	}
	now := a.now().UTC()
	cutoff := now.Add(-retention)
	// Entries are timed before the chain's lock is taken, so seq order is
	// not strictly time order: the first young entry bounds what may go.
	young, ok, err := a.st.FirstAuditSeqSince(ctx, cutoff)
	if err != nil {
		return PruneResult{}, err
	}
	if !ok {
		head, _, err := a.st.AuditHeadSeq(ctx)
		if err != nil {
			return PruneResult{}, err
		}
		young = head + 1
	}
	cps, err := a.Checkpoints(ctx)
	if err != nil {
		return PruneResult{}, err
	}
	var anchor *auditchain.Checkpoint
	for i := range cps {
		if c := cps[i]; c.Seq < young && c.Valid(a.PublicKey()) {
			anchor = &cps[i]
		}
	}
	if anchor == nil {
		return PruneResult{}, nil
	}
	// The whole chain is verified only when there may be something to
	// prune: at most once a day, and never on a chain that is broken.
	res, err := a.log.Verify(ctx)
	if err != nil {
		return PruneResult{}, err
	}
	if !res.OK {
		return PruneResult{}, fmt.Errorf("audit chain broken at entry %d (%s): nothing pruned", *res.Broken, res.Reason)
	}
	if first := max(res.FirstSeq, 1); anchor.Seq < first {
		return PruneResult{}, nil // pruned through it already
	}
	n, err := a.st.PruneAudit(ctx, anchor.Seq)
	if err != nil {
		return PruneResult{}, err
	}
	out := PruneResult{Removed: n, ThroughSeq: anchor.Seq}
	return out, a.log.Record(ctx, Entry{Actor: "server", Source: "local", Action: Pruned, Target: "audit", Outcome: Success,
		Details: map[string]string{"removed": strconv.FormatInt(n, 10), "through_seq": strconv.FormatInt(anchor.Seq, 10),
			"checkpoint_time": anchor.Time.UTC().Format(auditchain.TimeLayout),
			"cutoff":          cutoff.Format(auditchain.TimeLayout), "retention": retention.String()}})
}
