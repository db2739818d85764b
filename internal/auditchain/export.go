package auditchain

import (
	"bufio"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// ExportEntry is one entry line of `cordonctl audit export` (the API's
// JSON of an entry).
type ExportEntry struct {
	Seq      int64             `json:"seq"`
	Time     string            `json:"time"`
	Actor    string            `json:"actor"`
	Source   string            `json:"source"`
	Action   string            `json:"action"`
	Target   string            `json:"target"`
	Outcome  string            `json:"outcome"`
	Details  map[string]string `json:"details"`
	PrevHash string            `json:"prev_hash"`
	Hash     string            `json:"hash"`
}

// ExportCheckpoint is one checkpoint line of an export.
type ExportCheckpoint struct {
	Checkpoint *Checkpoint `json:"checkpoint"`
}

// MaxExportLine bounds one line of an export (an entry's details are
// bounded far below this by the server).
const MaxExportLine = 1 << 20

// ReadExport reads an export: JSON lines, each an entry or a
// {"checkpoint": ...} line, entries in sequence order.
func ReadExport(r io.Reader) ([]Entry, []Checkpoint, error) {
	var (
		es  []Entry
		cps []Checkpoint
	)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), MaxExportLine)
	for n := 1; sc.Scan(); n++ {
		line := sc.Bytes()
		if len(line) == 0 {
			continue
		}
		var probe map[string]json.RawMessage
		if err := json.Unmarshal(line, &probe); err != nil {
			return nil, nil, fmt.Errorf("line %d: %w", n, err)
		}
		if raw, ok := probe["checkpoint"]; ok {
			var c Checkpoint
			if err := json.Unmarshal(raw, &c); err != nil {
				return nil, nil, fmt.Errorf("line %d: %w", n, err)
			}
			cps = append(cps, c)
			continue
		}
		var x ExportEntry
		if err := json.Unmarshal(line, &x); err != nil {
			return nil, nil, fmt.Errorf("line %d: %w", n, err)
		}
		e, err := x.entry()
		if err != nil {
			return nil, nil, fmt.Errorf("line %d: %w", n, err)
		}
		es = append(es, e)
	}
	if err := sc.Err(); err != nil {
		return nil, nil, err
	}
	return es, cps, nil
}

func (x ExportEntry) entry() (Entry, error) {
	if x.Seq < 1 {
		return Entry{}, errors.New("an entry needs a positive seq")
	}
	t, err := time.Parse(time.RFC3339Nano, x.Time)
	if err != nil {
		return Entry{}, fmt.Errorf("entry %d: time: %w", x.Seq, err)
	}
	details := ""
	if len(x.Details) > 0 {
		b, err := json.Marshal(x.Details) // sorted keys, as the server wrote them
		if err != nil {
			return Entry{}, err
		}
		details = string(b)
	}
	return Entry{Seq: x.Seq, Time: t, Actor: x.Actor, Source: x.Source, Action: x.Action, Target: x.Target,
		Outcome: x.Outcome, Details: details, PrevHash: x.PrevHash, Hash: x.Hash}, nil
}

// VerifyExport checks an export offline: every checkpoint's signature
// under pub, every entry's hash and link, and the chain against every
// checkpoint. An export without checkpoints does not verify: without
// them nothing shows that the chain was not recomputed.
func VerifyExport(r io.Reader, pub ed25519.PublicKey) (Result, error) {
	es, cps, err := ReadExport(r)
	if err != nil {
		return Result{}, err
	}
	if len(cps) == 0 {
		return Result{Reason: "the export holds no signed checkpoint: nothing vouches for the chain"}, nil
	}
	v := NewVerifier(pub, cps)
	for _, e := range es {
		v.Add(e)
	}
	return v.Finish(0, "", false), nil
}
