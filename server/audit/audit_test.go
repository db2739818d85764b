package audit

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/cordon-mdm/cordon/server/store"
)

func newLog(t *testing.T) (*Log, *store.Store) {
	t.Helper()
	st, err := store.Open(context.Background(), t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return New(st, nil), st
}

func record(t *testing.T, l *Log, n int) {
	t.Helper()
	for i := range n {
		if err := l.Record(context.Background(), Entry{Actor: "local:t", Source: "local", Action: "test",
			Target: fmt.Sprint(i), Outcome: Success, Details: map[string]string{"i": fmt.Sprint(i)}}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestVerifyDetectsDeletionAndTruncation(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name   string
		delete string
		broken int64
		reason string
	}{
		{"middle row removed", "seq = 3", 3, "missing"},
		{"tail removed", "seq = 5", 5, "ends at entry 4"},
	} {
		t.Run(c.name, func(t *testing.T) {
			l, st := newLog(t)
			record(t, l, 5)
			if res, err := l.Verify(ctx); err != nil || !res.OK || res.Entries != 5 {
				t.Fatalf("intact: %+v %v", res, err)
			}
			if err := st.DB().Exec("DELETE FROM audit_entries WHERE " + c.delete).Error; err != nil {
				t.Fatal(err)
			}
			res, err := l.Verify(ctx)
			if err != nil || res.OK || res.Broken == nil || *res.Broken != c.broken || !strings.Contains(res.Reason, c.reason) {
				t.Fatalf("after delete: %+v %v", res, err)
			}
		})
	}
}

// Concurrent writers must never fork the chain.
func TestConcurrentAppendsKeepOneChain(t *testing.T) {
	l, _ := newLog(t)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() { defer wg.Done(); record(t, l, 10) }()
	}
	wg.Wait()
	res, err := l.Verify(context.Background())
	if err != nil || !res.OK || res.Entries != 80 {
		t.Fatalf("%+v %v", res, err)
	}
}

// A page of the log read backwards, filtered by action: the newest
// matching entries before a point, however far apart they are.
func TestListAuditNewestFirst(t *testing.T) {
	ctx := context.Background()
	l, st := newLog(t)
	for i := range 300 {
		action := "test"
		if i%50 == 0 {
			action = "rare" // seqs 1, 51, 101, 151, 201, 251
		}
		if err := l.Record(ctx, Entry{Actor: "local:t", Source: "local", Action: action, Target: fmt.Sprint(i), Outcome: Success}); err != nil {
			t.Fatal(err)
		}
	}
	seqs := func(q store.AuditQuery) string {
		es, err := st.ListAudit(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range es {
			out = append(out, fmt.Sprint(e.Seq))
		}
		return strings.Join(out, " ")
	}
	if got := seqs(store.AuditQuery{Action: "rare", NewestFirst: true, Limit: 4}); got != "251 201 151 101" {
		t.Fatalf("newest rare entries: %s", got)
	}
	if got := seqs(store.AuditQuery{Action: "rare", NewestFirst: true, BeforeSeq: 101, Limit: 4}); got != "51 1" {
		t.Fatalf("rare entries before 101: %s", got)
	}
	if got := seqs(store.AuditQuery{AfterSeq: 297}); got != "298 299 300" {
		t.Fatalf("oldest-first after 297: %s", got)
	}
}
