package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/server/store"
)

func reviewContracts() []contract {
	return []contract{
		{"SaveAuditReview", []string{"SaveAuditReview", "GetAuditReview", "ListAuditReviews", "MarkAuditReviewed"}, func(t *testing.T, open Opener) {
			st := open(t)
			at := now()
			week := 7 * 24 * time.Hour
			for _, w := range []struct {
				id  string
				ago time.Duration
			}{{"w1", 2 * week}, {"w3", 0}, {"w2", week}} {
				end := at.Add(-w.ago)
				must(t, st.SaveAuditReview(t.Context(), &store.AuditReview{ID: w.id, PeriodStart: end.Add(-week), PeriodEnd: end,
					CreatedAt: at, Summary: `{"review":"` + w.id + `"}`}))
			}
			if err := st.SaveAuditReview(t.Context(), &store.AuditReview{ID: "w1"}); err == nil {
				t.Fatal("a second review with the same id was stored")
			}
			rs, err := st.ListAuditReviews(t.Context(), 10)
			must(t, err)
			reviewIDs := func(rs []store.AuditReview) []string {
				return ids(rs, func(r store.AuditReview) string { return r.ID })
			}
			sameIDs(t, "newest period first", reviewIDs(rs), "w3", "w2", "w1")
			rs, _ = st.ListAuditReviews(t.Context(), 1)
			sameIDs(t, "limit", reviewIDs(rs), "w3")
			rs, _ = st.ListAuditReviews(t.Context(), 0)
			sameIDs(t, "no limit", reviewIDs(rs), "w3", "w2", "w1")
			if ok, err := st.MarkAuditReviewed(t.Context(), "w2", "laso", "looked fine", at); err != nil || !ok {
				t.Fatalf("mark: %v %v", ok, err)
			}
			if ok, err := st.MarkAuditReviewed(t.Context(), "w2", "other", "again", at.Add(time.Hour)); err != nil || ok {
				t.Fatalf("mark twice: %v %v", ok, err)
			}
			r, err := st.GetAuditReview(t.Context(), "w2")
			if err != nil || r.ReviewedBy != "laso" || r.Note != "looked fine" || r.Summary != `{"review":"w2"}` {
				t.Fatalf("review %+v %v", r, err)
			}
			samePtrTime(t, "reviewed", r.ReviewedAt, at)
			sameTime(t, "period end", r.PeriodEnd, at.Add(-week))
			if ok, _ := st.MarkAuditReviewed(t.Context(), "nope", "laso", "", at); ok {
				t.Fatal("an unknown review was marked")
			}
			_, err = st.GetAuditReview(t.Context(), "nope")
			wantErr(t, "unknown review", err, store.ErrNotFound)
		}},
		{"WalkAuditBetween", []string{"WalkAuditBetween"}, func(t *testing.T, open Opener) {
			st := open(t)
			at := now()
			bulkAudit(t, st, 1300, at) // a second apart
			var seen []int64
			from, to := at.Add(100*time.Second), at.Add(1250*time.Second)
			must(t, st.WalkAuditBetween(t.Context(), from, to, func(e *store.AuditEntry) error {
				seen = append(seen, e.Seq)
				return nil
			}))
			// [from, to): seq 101 (at+100s) to seq 1250 (at+1249s), in order.
			if len(seen) != 1150 || seen[0] != 101 || seen[len(seen)-1] != 1250 {
				t.Fatalf("walked %d entries, %d..%d", len(seen), seen[0], seen[len(seen)-1])
			}
			for i := 1; i < len(seen); i++ {
				if seen[i] != seen[i-1]+1 {
					t.Fatalf("out of order at %d: %d after %d", i, seen[i], seen[i-1])
				}
			}
			stop := errors.New("stop")
			if err := st.WalkAuditBetween(t.Context(), from, to, func(*store.AuditEntry) error { return stop }); !errors.Is(err, stop) {
				t.Fatalf("fn's error: %v", err)
			}
		}},
		{"FirstAuditTime", []string{"FirstAuditTime"}, func(t *testing.T, open Opener) {
			st := open(t)
			if ft, err := st.FirstAuditTime(t.Context()); err != nil || !ft.IsZero() {
				t.Fatalf("empty log: %v %v", ft, err)
			}
			at := now()
			for i := range 3 {
				appendAudit(t, st, "a", "", at.Add(time.Duration(i)*time.Hour))
			}
			ft, err := st.FirstAuditTime(t.Context())
			must(t, err)
			sameTime(t, "first", ft, at)
			_, err = st.PruneAudit(t.Context(), 1)
			must(t, err)
			ft, err = st.FirstAuditTime(t.Context())
			must(t, err)
			sameTime(t, "first after pruning", ft, at.Add(time.Hour))
		}},
	}
}
