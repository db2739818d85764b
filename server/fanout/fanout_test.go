package fanout_test

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cordon-mdm/cordon/internal/needs"
	"github.com/cordon-mdm/cordon/internal/testenv"
	"github.com/cordon-mdm/cordon/server/fanout"
)

// database is a fresh PostgreSQL database, or the test is skipped (failed
// under CI).
func database(t *testing.T) string {
	admin := os.Getenv(testenv.PostgresEnv)
	if admin == "" {
		needs.Missing(t, "%s not set: the bus needs PostgreSQL (run the tests through `make test`)", testenv.PostgresEnv)
	}
	return testenv.FreshPostgres(t, admin)
}

func open(t *testing.T, url string) *fanout.Bus {
	t.Helper()
	b, err := fanout.Open(context.Background(), url, fanout.WithBackoff(10*time.Millisecond, 100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// heard collects what one process's Run handed it.
type heard struct {
	mu      sync.Mutex
	notices []fanout.Notice
	resyncs int
}

func (h *heard) handle(_ context.Context, n fanout.Notice) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.notices = append(h.notices, n)
}

func (h *heard) resync(context.Context) { h.mu.Lock(); h.resyncs++; h.mu.Unlock() }

func (h *heard) got() ([]fanout.Notice, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]fanout.Notice(nil), h.notices...), h.resyncs
}

func run(t *testing.T, b *fanout.Bus) *heard {
	h := &heard{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); b.Run(ctx, h.handle, h.resync) }()
	t.Cleanup(func() { cancel(); <-done })
	return h
}

func TestANoticeReachesTheOtherProcessesNotItsSender(t *testing.T) {
	url := database(t)
	a, b := open(t, url), open(t, url)
	ha, hb := run(t, a), run(t, b)
	ctx := context.Background()
	if err := a.Publish(ctx, "commands", "dev-1"); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, "state", "dev-2"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "each heard the other", func() bool {
		na, _ := ha.got()
		nb, _ := hb.got()
		return len(na) == 1 && len(nb) == 1
	})
	na, _ := ha.got()
	nb, _ := hb.got()
	if na[0] != (fanout.Notice{Kind: "state", DeviceID: "dev-2", Origin: b.Origin()}) {
		t.Fatalf("a heard %+v", na)
	}
	if nb[0] != (fanout.Notice{Kind: "commands", DeviceID: "dev-1", Origin: a.Origin()}) {
		t.Fatalf("b heard %+v", nb)
	}
	// A notice that is not one (anyone who may connect may NOTIFY) is
	// dropped, and the listener goes on.
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SELECT pg_notify($1, 'lock everything')", fanout.Channel); err != nil {
		t.Fatal(err)
	}
	if err := a.Publish(ctx, "revoked", "dev-3"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "b heard the next notice", func() bool { n, _ := hb.got(); return len(n) == 2 })
	if nb, _ := hb.got(); nb[1].Kind != "revoked" || nb[1].DeviceID != "dev-3" {
		t.Fatalf("b heard %+v", nb)
	}
	if err := a.Publish(ctx, "commands", "no:colons"); err == nil {
		t.Fatal("a device id with the separator was published")
	}
}

// TestListeningResumesAfterTheConnectionDies: PostgreSQL restarted, or
// the session was killed. The bus listens again, and resyncs, since the
// notices sent meanwhile are gone.
func TestListeningResumesAfterTheConnectionDies(t *testing.T) {
	url := database(t)
	a, b := open(t, url), open(t, url)
	hb := run(t, b)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid() AND query ILIKE 'LISTEN%'`); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "b resynced", func() bool { _, r := hb.got(); return r == 1 })
	testenv.Eventually(t, 10*time.Second, "b hears again", func() bool {
		if err := a.Publish(ctx, "commands", "dev-1"); err != nil {
			t.Fatal(err)
		}
		n, _ := hb.got()
		return len(n) > 0
	})
}

func TestALeaseIsHeldByOneProcessAtATime(t *testing.T) {
	url := database(t)
	a, b := open(t, url), open(t, url)
	ctx := context.Background()
	release, ok, err := a.Lease(ctx, "incident escalation")
	if err != nil || !ok {
		t.Fatalf("a: ok %v, err %v", ok, err)
	}
	if _, ok, err := b.Lease(ctx, "incident escalation"); err != nil || ok {
		t.Fatalf("b took a held lease: ok %v, err %v", ok, err)
	}
	if rb, ok, err := b.Lease(ctx, "command expiry"); err != nil || !ok {
		t.Fatalf("b: another job's lease: ok %v, err %v", ok, err)
	} else {
		rb()
	}
	release()
	rb, ok, err := b.Lease(ctx, "incident escalation")
	if err != nil || !ok {
		t.Fatalf("b after release: ok %v, err %v", ok, err)
	}
	// b dies holding it: its session goes, and the lease with it.
	if _, ok, _ := a.Lease(ctx, "incident escalation"); ok {
		t.Fatal("a took b's lease")
	}
	b.Close()
	_ = rb
	// PostgreSQL releases it once the backend sees its session end.
	testenv.Eventually(t, 10*time.Second, "a takes the lease b held when it died", func() bool {
		ra, ok, err := a.Lease(ctx, "incident escalation")
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			ra()
		}
		return ok
	})
}

// TestConcurrentLeasesGrantOneHolder: many processes try a job at once;
// at every instant one holds it.
func TestConcurrentLeasesGrantOneHolder(t *testing.T) {
	url := database(t)
	buses := []*fanout.Bus{open(t, url), open(t, url), open(t, url)}
	var mu sync.Mutex
	holders, maxHolders, runs := 0, 0, 0
	var wg sync.WaitGroup
	for _, b := range buses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 30 {
				release, ok, err := b.Lease(context.Background(), "job")
				if err != nil {
					t.Error(err)
					return
				}
				if !ok {
					continue
				}
				mu.Lock()
				holders++
				runs++
				maxHolders = max(maxHolders, holders)
				mu.Unlock()
				time.Sleep(time.Millisecond)
				mu.Lock()
				holders--
				mu.Unlock()
				release()
			}
		}()
	}
	wg.Wait()
	if maxHolders != 1 || runs == 0 {
		t.Fatalf("%d held the lease at once (%d runs)", maxHolders, runs)
	}
}

func TestOnlyTheFirstProcessUpResetsAndTheLastKnowsItIsAlone(t *testing.T) {
	url := database(t)
	a, b := open(t, url), open(t, url)
	ctx := context.Background()
	firsts := 0
	first := func(context.Context) error { firsts++; return nil }
	if err := a.Join(ctx, first); err != nil {
		t.Fatal(err)
	}
	if err := b.Join(ctx, first); err != nil {
		t.Fatal(err)
	}
	if firsts != 1 {
		t.Fatalf("first ran %d times", firsts)
	}
	if alone, err := b.Alone(ctx); err != nil || alone {
		t.Fatalf("b alone beside a: %v, %v", alone, err)
	}
	a.Close()
	c := open(t, url)
	testenv.Eventually(t, 10*time.Second, "c alone after a and b left", func() bool {
		alone, err := c.Alone(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return alone
	})
}

func FuzzParse(f *testing.F) {
	f.Add("commands:0123456789abcdef:8f9c2a8e-3b7d-4e0b-9b7e-2a1c3d4e5f60")
	f.Add("state::x")
	f.Add("a:b:c:d")
	f.Add(strings.Repeat("x", 9000))
	f.Fuzz(func(t *testing.T, payload string) {
		n, err := fanout.Parse(payload)
		if err != nil {
			return
		}
		if n.Kind+":"+n.Origin+":"+n.DeviceID != payload {
			t.Fatalf("%q parsed as %+v", payload, n)
		}
		if strings.ContainsAny(n.DeviceID, ": \n") || len(n.Origin) != 16 {
			t.Fatalf("%q parsed as %+v", payload, n)
		}
	})
}

// TestAnotherChannelIsHeardAndItsDeliveryTracked: the handshake cache's
// channel rides on the bus's connection. Its payloads reach its handler
// (not Run's), and it is told when delivery is lost and back, since what
// it holds may be trusted only while every change is heard.
func TestAnotherChannelIsHeardAndItsDeliveryTracked(t *testing.T) {
	url := database(t)
	var (
		mu       sync.Mutex
		payloads []string
		states   []bool
	)
	got := func() ([]string, []bool) {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), payloads...), append([]bool(nil), states...)
	}
	b, err := fanout.Open(context.Background(), url, fanout.WithBackoff(10*time.Millisecond, 100*time.Millisecond),
		fanout.WithChannel("cordon_identity",
			func(p string) { mu.Lock(); payloads = append(payloads, p); mu.Unlock() },
			func(on bool) { mu.Lock(); states = append(states, on); mu.Unlock() }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	if _, s := got(); len(s) != 1 || !s[0] {
		t.Fatalf("after Open: delivery states %v, want [true]", s)
	}
	h := run(t, b)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SELECT pg_notify('cordon_identity', 'cert:42')"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "the payload reached its handler", func() bool { p, _ := got(); return len(p) == 1 })
	if p, _ := got(); p[0] != "cert:42" {
		t.Fatalf("handler got %q", p)
	}
	if n, _ := h.got(); len(n) != 0 {
		t.Fatalf("Run's handler got the other channel's payload: %+v", n)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid() AND query ILIKE 'LISTEN%'`); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "delivery lost, then back", func() bool {
		_, s := got()
		return len(s) >= 3 && !s[1] && s[2]
	})
	if _, err := conn.Exec(ctx, "SELECT pg_notify('cordon_identity', 'device:d1')"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "heard again after the reconnect", func() bool { p, _ := got(); return len(p) == 2 && p[1] == "device:d1" })
}
