package fanout_test

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cordon-mdm/cordon/internal/testenv"
	"github.com/cordon-mdm/cordon/server/fanout"
)

func live(t *testing.T, b *fanout.Bus) []string {
	t.Helper()
	l, err := b.Live(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(l)
	return l
}

func sorted(s ...string) []string { slices.Sort(s); return s }

func join(t *testing.T, b *fanout.Bus) {
	t.Helper()
	if err := b.Join(context.Background(), func(context.Context) error { return nil }); err != nil {
		t.Fatal(err)
	}
}

// TestLiveListsTheProcessesUp: the processes joined on this database,
// until their session ends; one that has not joined, or serves another
// database, is not listed, and one whose session broke is listed again
// once its next lease reopens it.
func TestLiveListsTheProcessesUp(t *testing.T) {
	url := database(t)
	a, b, idle := open(t, url), open(t, url), open(t, url)
	elsewhere := open(t, database(t))
	join(t, a)
	join(t, b)
	join(t, elsewhere)
	if got, want := live(t, idle), sorted(a.Origin(), b.Origin()); !slices.Equal(got, want) {
		t.Fatalf("live %v, want a and b %v", got, want)
	}
	// A lease (exclusive) is no process.
	release, ok, err := a.Lease(context.Background(), "some job")
	if err != nil || !ok {
		t.Fatalf("lease: %v %v", ok, err)
	}
	defer release()
	if got, want := live(t, b), sorted(a.Origin(), b.Origin()); !slices.Equal(got, want) {
		t.Fatalf("live with a lease held %v, want %v", got, want)
	}
	b.Close()
	testenv.Eventually(t, 10*time.Second, "only a live once b is closed", func() bool {
		return slices.Equal(live(t, a), []string{a.Origin()})
	})

	// a's lease session dies under it (PostgreSQL restarted, say).
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	o, _ := hex.DecodeString(a.Origin())
	if _, err := conn.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1
		AND ((classid::bigint << 32) | objid::bigint) = $1`, int64(binary.BigEndian.Uint64(o))); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "a gone with its session", func() bool { return len(live(t, idle)) == 0 })
	testenv.Eventually(t, 10*time.Second, "a live again after a lease reopened its session", func() bool {
		if release, ok, err := a.Lease(ctx, "another job"); err == nil && ok {
			release()
		}
		return slices.Equal(live(t, idle), []string{a.Origin()})
	})
}
