package ticketkeys_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/internal/needs"
	"github.com/cordon-mdm/cordon/internal/testenv"
	"github.com/cordon-mdm/cordon/server/store"
	"github.com/cordon-mdm/cordon/server/ticketkeys"
)

// TestProcessesShareKeysThroughPostgres: two processes (two stores on one
// real PostgreSQL, each with its own copy of the data dir's wrapping key)
// agree on every key, a rotation made by one is what the other loads,
// and a process whose data dir holds another wrapping key is told so.
func TestProcessesShareKeysThroughPostgres(t *testing.T) {
	admin := os.Getenv(testenv.PostgresEnv)
	if admin == "" {
		needs.Missing(t, "%s not set: PostgreSQL sharing not tested (run through scripts/with-test-services.sh)", testenv.PostgresEnv)
	}
	dsn := testenv.FreshPostgres(t, admin)
	wrapPath := filepath.Join(t.TempDir(), "ticket-wrap.key")
	wrap, err := ticketkeys.WrapKey(wrapPath)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(wrapPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("wrapping key file: %v %v", fi.Mode(), err)
	}
	if again, err := ticketkeys.WrapKey(wrapPath); err != nil || string(again) != string(wrap) {
		t.Fatalf("the wrapping key changed on a second read: %v", err)
	}
	c := &clock{t: time.Date(2026, 12, 1, 23, 0, 0, 0, time.UTC)}
	proc := func(wrap []byte) (*ticketkeys.Sealed, *store.Store) {
		st, err := store.Open(t.Context(), t.TempDir(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		sealed, err := ticketkeys.NewSealed(st, wrap)
		if err != nil {
			t.Fatal(err)
		}
		return sealed, st
	}
	a, db := proc(wrap)
	b, _ := proc(append([]byte(nil), wrap...))
	ra := ticketkeys.New(a, ticketkeys.WithClock(c.now))
	rb := ticketkeys.New(b, ticketkeys.WithClock(c.now))
	for _, r := range []*ticketkeys.Rotator{ra, rb} {
		if err := r.Refresh(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	ka, kb := epochs(t, a), epochs(t, b)
	if len(ka) != 2 || len(kb) != 2 {
		t.Fatalf("epochs: %v and %v", keysOf(ka), keysOf(kb))
	}
	for e, k := range ka {
		if kb[e] != k {
			t.Fatalf("the processes disagree on epoch %d's key", e)
		}
	}
	// The database holds them sealed, not in clear.
	blobs, err := db.TicketKeyBlobs(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	for e, blob := range blobs {
		k := ka[e]
		if len(blob) <= 32 || string(blob) == string(k[:]) {
			t.Fatalf("epoch %d is stored in clear", e)
		}
	}
	// A day on, A rotates first; B, refreshing after, uses A's new key.
	c.add(24 * time.Hour)
	if err := ra.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := rb.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	ka, kb = epochs(t, a), epochs(t, b)
	if len(ka) != 3 || len(kb) != 3 {
		t.Fatalf("after rotation: %v and %v", keysOf(ka), keysOf(kb))
	}
	for e, k := range ka {
		if kb[e] != k {
			t.Fatalf("after rotation the processes disagree on epoch %d's key", e)
		}
	}
	other := make([]byte, 32)
	stranger, _ := proc(other)
	if err := ticketkeys.New(stranger, ticketkeys.WithClock(c.now)).Refresh(t.Context()); !errors.Is(err, ticketkeys.ErrWrongWrapKey) {
		t.Fatalf("a process with another wrapping key: %v", err)
	}
}
