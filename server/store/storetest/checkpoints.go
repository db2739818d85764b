package storetest

import (
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/server/store"
)

func checkpointContracts() []contract {
	return []contract{
		{"SaveAuditCheckpoint", []string{"SaveAuditCheckpoint", "ListAuditCheckpoints"}, func(t *testing.T, open Opener) {
			st := open(t)
			if cs, err := st.ListAuditCheckpoints(t.Context()); err != nil || len(cs) != 0 {
				t.Fatalf("empty store: %v %v", cs, err)
			}
			at := now()
			for _, c := range []store.AuditCheckpoint{{Seq: 9, Hash: "h9", Time: at, Signature: "s9"},
				{Seq: 3, Hash: "h3", Time: at.Add(-time.Hour), Signature: "s3"}} {
				must(t, st.SaveAuditCheckpoint(t.Context(), &c))
			}
			// A second checkpoint of seq 9 (another server, a retry) keeps
			// the first: a signed checkpoint is never rewritten.
			must(t, st.SaveAuditCheckpoint(t.Context(), &store.AuditCheckpoint{Seq: 9, Hash: "other", Time: at, Signature: "x"}))
			cs, err := st.ListAuditCheckpoints(t.Context())
			must(t, err)
			if len(cs) != 2 || cs[0].Seq != 3 || cs[1].Seq != 9 || cs[1].Hash != "h9" || cs[1].Signature != "s9" {
				t.Fatalf("checkpoints %+v", cs)
			}
			sameTime(t, "checkpoint time", cs[0].Time, at.Add(-time.Hour))
		}},
		{"LatestAuditCheckpoint", []string{"LatestAuditCheckpoint"}, func(t *testing.T, open Opener) {
			st := open(t)
			_, err := st.LatestAuditCheckpoint(t.Context())
			wantErr(t, "no checkpoint yet", err, store.ErrNotFound)
			at := now()
			// Newest by time: another process may sign a lower seq later.
			for _, c := range []store.AuditCheckpoint{{Seq: 9, Hash: "h9", Time: at.Add(-time.Hour), Signature: "s9"},
				{Seq: 7, Hash: "h7", Time: at, Signature: "s7"}, {Seq: 3, Hash: "h3", Time: at.Add(-2 * time.Hour), Signature: "s3"}} {
				must(t, st.SaveAuditCheckpoint(t.Context(), &c))
			}
			c, err := st.LatestAuditCheckpoint(t.Context())
			must(t, err)
			if c.Seq != 7 || c.Hash != "h7" {
				t.Fatalf("latest %+v, want seq 7", c)
			}
			sameTime(t, "latest time", c.Time, at)
		}},
		{"FirstAuditSeqSince", []string{"FirstAuditSeqSince"}, func(t *testing.T, open Opener) {
			st := open(t)
			at := now()
			if _, ok, err := st.FirstAuditSeqSince(t.Context(), at); err != nil || ok {
				t.Fatalf("empty log: ok %v, %v", ok, err)
			}
			for i := range 3 {
				appendAudit(t, st, "a", "", at.Add(time.Duration(i)*time.Minute))
			}
			for _, c := range []struct {
				since time.Time
				seq   int64
				ok    bool
			}{{at.Add(-time.Hour), 1, true}, {at.Add(time.Minute), 2, true}, {at.Add(time.Minute + time.Microsecond), 3, true},
				{at.Add(time.Hour), 0, false},
				// The instant counts, not the zone it is written in.
				{at.Add(time.Minute).In(time.FixedZone("UTC-5", -5*3600)), 2, true}} {
				seq, ok, err := st.FirstAuditSeqSince(t.Context(), c.since)
				if err != nil || seq != c.seq || ok != c.ok {
					t.Fatalf("since %v: %d %v %v, want %d %v", c.since, seq, ok, err, c.seq, c.ok)
				}
			}
		}},
		{"PruneAudit", []string{"PruneAudit"}, func(t *testing.T, open Opener) {
			st := open(t)
			for range 5 {
				appendAudit(t, st, "a", "", now())
			}
			n, err := st.PruneAudit(t.Context(), 3)
			if err != nil || n != 3 {
				t.Fatalf("pruned %d, %v; want 3", n, err)
			}
			if n, err := st.PruneAudit(t.Context(), 3); err != nil || n != 0 {
				t.Fatalf("pruning again removed %d, %v", n, err)
			}
			es, err := st.ListAudit(t.Context(), store.AuditQuery{})
			must(t, err)
			sameIDs(t, "left", seqs(es), "4", "5")
			// The chain goes on from its head, not from what is left.
			seq, hash, err := st.AuditHeadSeq(t.Context())
			if err != nil || seq != 5 || hash != es[1].Hash {
				t.Fatalf("head after pruning: %d %q %v", seq, hash, err)
			}
			e := appendAudit(t, st, "after", "", now())
			if e.Seq != 6 || e.PrevHash != hash {
				t.Fatalf("append after pruning: seq %d prev %q", e.Seq, e.PrevHash)
			}
		}},
	}
}
