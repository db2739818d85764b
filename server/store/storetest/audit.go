package storetest

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/server/store"
)

// seal is a stand-in for server/audit's: a hash over the link's place in
// the chain, so a fork or a gap shows.
func seal(e *store.AuditEntry) {
	sum := sha256.Sum256(fmt.Appendf(nil, "%d|%s|%s|%s", e.Seq, e.PrevHash, e.Action, e.Target))
	e.Hash = hex.EncodeToString(sum[:])
}

// appendAudit appends an entry with action and target at at.
func appendAudit(t *testing.T, st *store.Store, action, target string, at time.Time) *store.AuditEntry {
	t.Helper()
	e := &store.AuditEntry{Time: at, Actor: "tester", Source: "test", Action: action, Target: target, Outcome: "success",
		Details: `{"k":"v"}`}
	must(t, st.AppendAudit(t.Context(), e, seal))
	return e
}

// checkChain fails t unless es are links 1..n of one unbroken chain.
func checkChain(t *testing.T, es []store.AuditEntry) {
	t.Helper()
	prev := ""
	for i, e := range es {
		want := e
		seal(&want)
		if e.Seq != int64(i+1) || e.PrevHash != prev || e.Hash != want.Hash {
			t.Fatalf("link %d: seq %d prev %q hash %q (want prev %q hash %q)", i+1, e.Seq, e.PrevHash, e.Hash, prev, want.Hash)
		}
		prev = e.Hash
	}
}

func seqs(es []store.AuditEntry) []string {
	return ids(es, func(e store.AuditEntry) string { return fmt.Sprint(e.Seq) })
}

func auditContracts() []contract {
	return []contract{
		{"AppendAudit/chain", []string{"AppendAudit", "AuditHeadSeq"}, func(t *testing.T, open Opener) {
			st := open(t)
			if seq, hash, err := st.AuditHeadSeq(t.Context()); err != nil || seq != 0 || hash != "" {
				t.Fatalf("empty log's head: %d %q %v", seq, hash, err)
			}
			at := now()
			var sealed []string
			for i := range 3 {
				e := &store.AuditEntry{Time: at.Add(time.Duration(i) * time.Second), Actor: "a", Action: "x.done"}
				must(t, st.AppendAudit(t.Context(), e, func(e *store.AuditEntry) {
					sealed = append(sealed, fmt.Sprintf("%d<-%.8s", e.Seq, e.PrevHash))
					seal(e)
				}))
			}
			es, err := st.ListAudit(t.Context(), store.AuditQuery{})
			must(t, err)
			checkChain(t, es)
			if len(es) != 3 || sealed[0] != "1<-" || sealed[2] != fmt.Sprintf("3<-%.8s", es[1].Hash) {
				t.Fatalf("seal saw %v", sealed)
			}
			sameTime(t, "entry time", es[2].Time, at.Add(2*time.Second))
			if es[0].Actor != "a" || es[0].Action != "x.done" {
				t.Fatalf("entry read back as %+v", es[0])
			}
			seq, hash, err := st.AuditHeadSeq(t.Context())
			if err != nil || seq != 3 || hash != es[2].Hash {
				t.Fatalf("head %d %q %v, want 3 %q", seq, hash, err, es[2].Hash)
			}
		}},
		{"AppendAudit/concurrent", []string{"AppendAudit"}, func(t *testing.T, open Opener) {
			// Writers racing for the head (goroutines here, processes and
			// servers in production) never fork the chain.
			st := open(t)
			var wg sync.WaitGroup
			errs := make(chan error, 16)
			for i := range 16 {
				wg.Go(func() {
					e := &store.AuditEntry{Time: now(), Action: "race", Target: fmt.Sprint(i)}
					errs <- st.AppendAudit(t.Context(), e, seal)
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				must(t, err)
			}
			es, err := st.ListAudit(t.Context(), store.AuditQuery{})
			must(t, err)
			if len(es) != 16 {
				t.Fatalf("%d entries, want 16", len(es))
			}
			checkChain(t, es)
		}},
		{"ListAudit", []string{"ListAudit"}, func(t *testing.T, open Opener) {
			st := open(t)
			at := now()
			for i, a := range []string{"login", "revoke", "login", "revoke", "login"} {
				appendAudit(t, st, a, fmt.Sprint("d", i%2), at)
			}
			list := func(q store.AuditQuery) []string {
				t.Helper()
				es, err := st.ListAudit(t.Context(), q)
				must(t, err)
				return seqs(es)
			}
			sameIDs(t, "all", list(store.AuditQuery{}), "1", "2", "3", "4", "5")
			sameIDs(t, "after 2", list(store.AuditQuery{AfterSeq: 2}), "3", "4", "5")
			sameIDs(t, "before 3", list(store.AuditQuery{BeforeSeq: 3}), "1", "2")
			sameIDs(t, "action", list(store.AuditQuery{Action: "login"}), "1", "3", "5")
			sameIDs(t, "target", list(store.AuditQuery{Target: "d1"}), "2", "4")
			sameIDs(t, "action and target", list(store.AuditQuery{Action: "login", Target: "d0"}), "1", "3", "5")
			sameIDs(t, "limit", list(store.AuditQuery{Limit: 2}), "1", "2")
			sameIDs(t, "newest first", list(store.AuditQuery{NewestFirst: true, Limit: 2}), "5", "4")
			sameIDs(t, "a page backwards", list(store.AuditQuery{NewestFirst: true, BeforeSeq: 4, Limit: 2}), "3", "2")
			sameIDs(t, "nothing", list(store.AuditQuery{Action: "wipe"}))
		}},
		{"ListAudit/limit", []string{"ListAudit"}, func(t *testing.T, open Opener) {
			// A page is at most 1000 entries, whatever the caller asks.
			st := open(t)
			bulkAudit(t, st, 1001, now())
			for _, limit := range []int{0, -1, 5000} {
				es, err := st.ListAudit(t.Context(), store.AuditQuery{Limit: limit})
				must(t, err)
				if len(es) != 1000 || es[0].Seq != 1 {
					t.Fatalf("limit %d: %d entries from %d", limit, len(es), es[0].Seq)
				}
			}
		}},
		{"WalkAudit", []string{"WalkAudit"}, func(t *testing.T, open Opener) {
			st := open(t)
			bulkAudit(t, st, 1203, now()) // past two batches
			var n int64
			must(t, st.WalkAudit(t.Context(), func(e *store.AuditEntry) error {
				if n++; e.Seq != n {
					return fmt.Errorf("entry %d came as number %d", e.Seq, n)
				}
				return nil
			}))
			if n != 1203 {
				t.Fatalf("walked %d entries, want 1203", n)
			}
			stop := errors.New("stop")
			n = 0
			err := st.WalkAudit(t.Context(), func(e *store.AuditEntry) error {
				if n++; n == 7 {
					return stop
				}
				return nil
			})
			if !errors.Is(err, stop) || n != 7 {
				t.Fatalf("fn's error: walk returned %v after %d entries", err, n)
			}
			empty := open(t)
			must(t, empty.WalkAudit(t.Context(), func(*store.AuditEntry) error { return errors.New("called") }))
		}},
	}
}

// bulkAudit writes n chained entries, a second apart from start, in
// batches (through DB: n appends one by one would only be slow).
func bulkAudit(t *testing.T, st *store.Store, n int, start time.Time) {
	t.Helper()
	es := make([]store.AuditEntry, n)
	prev := ""
	for i := range es {
		es[i] = store.AuditEntry{Seq: int64(i + 1), Time: start.Add(time.Duration(i) * time.Second), Action: "bulk", PrevHash: prev}
		seal(&es[i])
		prev = es[i].Hash
	}
	must(t, st.DB().CreateInBatches(es, 200).Error)
	must(t, st.DB().Model(&store.AuditHead{}).Where("id = 1").Updates(map[string]any{"seq": n, "hash": prev}).Error)
}
