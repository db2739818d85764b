// Package auditchain is the audit trail's hash chain and its signed
// checkpoints, with nothing else: the server (server/audit) and the
// offline verifier (cordonctl audit verify --file) share one definition
// of an entry's hash, of a checkpoint's signed message and of what makes
// a chain intact. It imports only the standard library, so cordonctl's
// cryptography stays in the FIPS module (Ed25519 and SHA-256 are both
// approved in Go's FIPS 140-3 module).
package auditchain

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"time"
)

// TimeLayout is how checkpoint times are written (UTC, microseconds).
const TimeLayout = "2006-01-02T15:04:05.000000Z"

// Entry is one link of the chain, as stored or exported.
type Entry struct {
	Seq                                             int64
	Time                                            time.Time
	Actor, Source, Action, Target, Outcome, Details string
	PrevHash, Hash                                  string
}

// Hash is the chain hash of an entry: SHA-256 over a canonical JSON
// encoding of every field except Hash itself.
func Hash(e Entry) string {
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

// Checkpoint vouches, under the server's checkpoint key, that entry Seq
// of the chain had hash Hash at Time. Whoever can write the database but
// not read the key cannot make one, so a chain recomputed after a
// rewritten row no longer meets the checkpoints signed before.
type Checkpoint struct {
	Seq       int64
	Hash      string
	Time      time.Time
	Signature []byte
}

type checkpointJSON struct {
	Seq       int64  `json:"seq"`
	Hash      string `json:"hash"`
	Time      string `json:"time"`
	Signature string `json:"signature"`
}

// MarshalJSON writes the time with microseconds and the signature in
// base64.
func (c Checkpoint) MarshalJSON() ([]byte, error) {
	return json.Marshal(checkpointJSON{c.Seq, c.Hash, c.Time.UTC().Format(TimeLayout), base64.StdEncoding.EncodeToString(c.Signature)})
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (c *Checkpoint) UnmarshalJSON(b []byte) error {
	var j checkpointJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	t, err := time.Parse(time.RFC3339Nano, j.Time)
	if err != nil {
		return fmt.Errorf("checkpoint time: %w", err)
	}
	sig, err := base64.StdEncoding.DecodeString(j.Signature)
	if err != nil {
		return fmt.Errorf("checkpoint signature: %w", err)
	}
	if j.Seq < 1 || len(j.Hash) != 64 {
		return errors.New("checkpoint: seq must be positive and hash 64 hex digits")
	}
	*c = Checkpoint{Seq: j.Seq, Hash: j.Hash, Time: t.UTC(), Signature: sig}
	return nil
}

// Message is the text a checkpoint's signature covers.
func (c Checkpoint) Message() []byte {
	return fmt.Appendf(nil, "cordon audit checkpoint v1\nseq %d\nhash %s\ntime %s\n", c.Seq, c.Hash, c.Time.UTC().Format(TimeLayout))
}

// Sign makes a checkpoint of entry seq with hash at t.
func Sign(key ed25519.PrivateKey, seq int64, hash string, t time.Time) Checkpoint {
	c := Checkpoint{Seq: seq, Hash: hash, Time: t.UTC().Truncate(time.Microsecond)}
	c.Signature = ed25519.Sign(key, c.Message())
	return c
}

// Valid reports whether c's signature verifies under pub.
func (c Checkpoint) Valid(pub ed25519.PublicKey) bool {
	return len(pub) == ed25519.PublicKeySize && ed25519.Verify(pub, c.Message(), c.Signature)
}

// PublicKeyPEM encodes pub as a PEM "PUBLIC KEY" (PKIX), the form
// `cordonctl audit verify --key` reads.
func PublicKeyPEM(pub ed25519.PublicKey) string {
	der, _ := x509.MarshalPKIXPublicKey(pub) // an Ed25519 key always marshals
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// ParsePublicKeyPEM reads what PublicKeyPEM wrote.
func ParsePublicKeyPEM(b []byte) (ed25519.PublicKey, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, errors.New("not a PEM PUBLIC KEY")
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, errors.New("not an Ed25519 public key")
	}
	return pub, nil
}

// Fingerprint is the SHA-256 of the key's PKIX encoding, in hex: what an
// auditor compares when taking the key from the server host.
func Fingerprint(pub ed25519.PublicKey) string {
	der, _ := x509.MarshalPKIXPublicKey(pub)
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// CheckpointRef names the checkpoint a verification was anchored on.
type CheckpointRef struct {
	Seq  int64  `json:"seq"`
	Time string `json:"time"`
}

// Result is the answer of a verification (also the API's JSON).
type Result struct {
	OK      bool   `json:"ok"`
	Entries int64  `json:"entries"`
	Broken  *int64 `json:"broken_seq,omitempty"`
	Reason  string `json:"reason,omitempty"`
	// FirstSeq is the oldest entry present when older ones were pruned
	// (AU-11); its predecessor is vouched for by a checkpoint.
	FirstSeq int64 `json:"first_seq,omitempty"`
	// Checkpoints is how many signed checkpoints were checked; Checkpoint
	// is the newest, the one the whole chain up to it matched.
	Checkpoints int            `json:"checkpoints"`
	Checkpoint  *CheckpointRef `json:"checkpoint,omitempty"`
}

// Verifier checks entries in sequence order against each other and
// against signed checkpoints. Feed it with Add, then call Finish.
type Verifier struct {
	cps      map[int64]Checkpoint
	newest   *Checkpoint
	res      Result
	started  bool
	last     int64
	prevHash string
}

// NewVerifier checks every checkpoint's signature under pub; one that
// does not verify, or two that disagree about one entry, break the
// result at once. With no checkpoints the chain is checked on its own
// (and cannot then be trusted against a database writer).
func NewVerifier(pub ed25519.PublicKey, cps []Checkpoint) *Verifier {
	v := &Verifier{cps: map[int64]Checkpoint{}}
	for _, c := range cps {
		if !c.Valid(pub) {
			v.fail(c.Seq, fmt.Sprintf("the checkpoint of entry %d signed at %s does not verify with the checkpoint key", c.Seq, c.Time.UTC().Format(TimeLayout)))
			return v
		}
		if old, ok := v.cps[c.Seq]; ok && old.Hash != c.Hash {
			v.fail(c.Seq, fmt.Sprintf("two signed checkpoints disagree about entry %d", c.Seq))
			return v
		}
		v.cps[c.Seq] = c
		if v.newest == nil || c.Seq > v.newest.Seq {
			c := c
			v.newest = &c
		}
	}
	v.res.Checkpoints = len(v.cps)
	return v
}

func (v *Verifier) fail(seq int64, reason string) {
	if v.res.Broken == nil {
		v.res.Broken, v.res.Reason = &seq, reason
	}
}

// Broken reports whether a break was found already.
func (v *Verifier) Broken() bool { return v.res.Broken != nil }

// Add checks the next entry.
func (v *Verifier) Add(e Entry) {
	if v.Broken() {
		return
	}
	if !v.started {
		v.started = true
		if e.Seq > 1 {
			// Older entries were pruned: the first one left must link to
			// a signed checkpoint of its predecessor.
			v.res.FirstSeq = e.Seq
			cp, ok := v.cps[e.Seq-1]
			switch {
			case !ok:
				v.fail(e.Seq-1, fmt.Sprintf("entry %d is missing (next present is %d) and no signed checkpoint vouches for the entries before it", e.Seq-1, e.Seq))
				return
			case cp.Hash != e.PrevHash:
				v.fail(e.Seq, fmt.Sprintf("entry %d does not link to the checkpoint of entry %d signed at %s", e.Seq, cp.Seq, cp.Time.UTC().Format(TimeLayout)))
				return
			}
			v.last, v.prevHash = e.Seq-1, e.PrevHash
		}
	}
	switch {
	case e.Seq != v.last+1:
		v.fail(v.last+1, fmt.Sprintf("entry %d is missing (next present is %d)", v.last+1, e.Seq))
	case e.PrevHash != v.prevHash:
		v.fail(e.Seq, fmt.Sprintf("entry %d does not link to entry %d", e.Seq, e.Seq-1))
	case Hash(e) != e.Hash:
		v.fail(e.Seq, fmt.Sprintf("entry %d was altered: its content does not match its hash", e.Seq))
	default:
		if cp, ok := v.cps[e.Seq]; ok && cp.Hash != e.Hash {
			v.fail(e.Seq, fmt.Sprintf("entry %d does not match the checkpoint signed at %s: the chain was rewritten at or before entry %d", e.Seq, cp.Time.UTC().Format(TimeLayout), e.Seq))
			return
		}
		v.res.Entries++
		v.last, v.prevHash = e.Seq, e.Hash
	}
}

// Finish ends the walk. With a head (the database's count of entries
// written, hasHead), a tail shorter than the head is a break; either
// way, a tail shorter than the newest checkpoint is.
func (v *Verifier) Finish(headSeq int64, headHash string, hasHead bool) Result {
	if !v.Broken() && v.newest != nil && v.newest.Seq > v.last {
		v.fail(v.last+1, fmt.Sprintf("the log ends at entry %d but the checkpoint signed at %s vouches for entry %d", v.last, v.newest.Time.UTC().Format(TimeLayout), v.newest.Seq))
	}
	if !v.Broken() && hasHead && (headSeq != v.last || headHash != v.prevHash) {
		v.fail(v.last+1, fmt.Sprintf("the log ends at entry %d but %d entries were written", v.last, headSeq))
	}
	if !v.Broken() && v.newest != nil {
		v.res.Checkpoint = &CheckpointRef{Seq: v.newest.Seq, Time: v.newest.Time.UTC().Format(TimeLayout)}
	}
	v.res.OK = !v.Broken()
	return v.res
}
