package storetest

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/server/store"
)

// command stores a command for device d, created at created and open for
// ttl (an hour when 0).
func command(t *testing.T, st *store.Store, id, d, status string, created time.Time, ttl time.Duration) *store.Command {
	t.Helper()
	if ttl == 0 {
		ttl = time.Hour
	}
	c := &store.Command{ID: id, DeviceID: d, Kind: "lock", Issuer: "laso@pd", IssuerRole: "laso", Source: "api",
		CreatedAt: created, NotAfter: created.Add(ttl), Status: status, Frame: []byte("frame-" + id)}
	must(t, st.CreateCommand(t.Context(), c))
	return c
}

func cmdIDs(cs []store.Command) []string {
	return ids(cs, func(c store.Command) string { return c.ID })
}

func getCommand(t *testing.T, st *store.Store, id string) *store.Command {
	t.Helper()
	c, err := st.GetCommand(t.Context(), id)
	must(t, err)
	return c
}

func commandContracts() []contract {
	return []contract{
		{"CreateCommand", []string{"CreateCommand", "GetCommand"}, func(t *testing.T, open Opener) {
			st := open(t)
			at := now()
			want := command(t, st, "c1", "d1", store.CommandHeld, at, 0)
			got := getCommand(t, st, "c1")
			if got.DeviceID != "d1" || got.Kind != "lock" || got.Issuer != want.Issuer || got.Status != store.CommandHeld ||
				!bytes.Equal(got.Frame, want.Frame) || got.DeliveredAt != nil || got.CompletedAt != nil {
				t.Fatalf("read back %+v", got)
			}
			sameTime(t, "created", got.CreatedAt, at)
			sameTime(t, "not after", got.NotAfter, at.Add(time.Hour))
			if err := st.CreateCommand(t.Context(), &store.Command{ID: "c1", DeviceID: "d2"}); err == nil {
				t.Fatal("a second command with the same id was stored")
			}
			_, err := st.GetCommand(t.Context(), "nope")
			wantErr(t, "unknown command", err, store.ErrNotFound)
		}},
		{"CountCommandsSince", []string{"CountCommandsSince"}, func(t *testing.T, open Opener) {
			st := open(t)
			at := now()
			command(t, st, "old", "d1", store.CommandDone, at.Add(-time.Hour), 0)
			command(t, st, "edge", "d1", store.CommandDone, at, 0)
			command(t, st, "new", "d2", store.CommandQueued, at.Add(time.Minute), 0)
			must(t, st.CreateCommand(t.Context(), &store.Command{ID: "w", DeviceID: "d1", Kind: "wipe", CreatedAt: at, NotAfter: at}))
			if n, err := st.CountCommandsSince(t.Context(), "lock", at); err != nil || n != 2 {
				t.Fatalf("locks since: %d, %v; want 2 (the boundary counts)", n, err)
			}
			if n, err := st.CountCommandsSince(t.Context(), "wipe", at.Add(-time.Hour)); err != nil || n != 1 {
				t.Fatalf("wipes: %d, %v", n, err)
			}
		}},
		{"Deliverable", []string{"Deliverable"}, func(t *testing.T, open Opener) {
			st := open(t)
			at := now()
			command(t, st, "b", "d1", store.CommandQueued, at, 0)
			command(t, st, "a", "d1", store.CommandQueued, at, 0) // same time: id breaks the tie
			command(t, st, "first", "d1", store.CommandDelivered, at.Add(-time.Minute), 0)
			command(t, st, "held", "d1", store.CommandHeld, at, 0)
			command(t, st, "done", "d1", store.CommandDone, at, 0)
			command(t, st, "stale", "d1", store.CommandQueued, at.Add(-2*time.Hour), time.Hour)
			command(t, st, "other", "d2", store.CommandQueued, at, 0)
			command(t, st, "stale-held", "d1", store.CommandHeld, at.Add(-2*time.Hour), time.Hour)
			command(t, st, "stale-other", "d2", store.CommandQueued, at.Add(-2*time.Hour), time.Hour)
			cs, expired, err := st.Deliverable(t.Context(), "d1", at)
			must(t, err)
			sameIDs(t, "deliverable", cmdIDs(cs), "first", "a", "b")
			// What expired on the way is returned, once, and only the
			// device's own.
			sameIDs(t, "expired on the way", cmdIDs(expired), "stale", "stale-held")
			if _, again, err := st.Deliverable(t.Context(), "d1", at); err != nil || len(again) != 0 {
				t.Fatalf("second call expired %v again, %v", cmdIDs(again), err)
			}
			if s := getCommand(t, st, "stale-other").Status; s != store.CommandQueued {
				t.Fatalf("another device's stale command is %s", s)
			}
			if !bytes.Equal(cs[0].Frame, []byte("frame-first")) {
				t.Fatalf("a redelivery needs the stored frame, got %q", cs[0].Frame)
			}
			stale := getCommand(t, st, "stale")
			if stale.Status != store.CommandExpired {
				t.Fatalf("past its not-after: %s, want expired", stale.Status)
			}
			samePtrTime(t, "expired at", stale.CompletedAt, at)
		}},
		{"MarkDelivered", []string{"MarkDelivered"}, func(t *testing.T, open Opener) {
			st := open(t)
			at := now()
			command(t, st, "q", "d1", store.CommandQueued, at, 0)
			command(t, st, "done", "d1", store.CommandDone, at, 0)
			must(t, st.MarkDelivered(t.Context(), "q", at.Add(time.Second)))
			q := getCommand(t, st, "q")
			if q.Status != store.CommandDelivered {
				t.Fatalf("status %s", q.Status)
			}
			samePtrTime(t, "delivered at", q.DeliveredAt, at.Add(time.Second))
			// A late delivery mark never moves a command back.
			must(t, st.MarkDelivered(t.Context(), "done", at))
			if d := getCommand(t, st, "done"); d.Status != store.CommandDone || d.DeliveredAt != nil {
				t.Fatalf("a done command was marked delivered: %+v", d)
			}
			must(t, st.MarkDelivered(t.Context(), "q", at.Add(time.Hour)))
			samePtrTime(t, "first delivery kept", getCommand(t, st, "q").DeliveredAt, at.Add(time.Second))
		}},
		{"Complete", []string{"Complete"}, func(t *testing.T, open Opener) {
			st := open(t)
			at := now()
			command(t, st, "c", "d1", store.CommandQueued, at, 0)
			c, changed, err := st.Complete(t.Context(), "d1", "c", store.CommandDone, `{"ok":true}`, at.Add(time.Second))
			if err != nil || !changed || c.Status != store.CommandDone || c.Result != `{"ok":true}` {
				t.Fatalf("complete: %+v %v %v", c, changed, err)
			}
			samePtrTime(t, "completed", c.CompletedAt, at.Add(time.Second))
			// Never marked delivered (the answer came first): delivered then.
			samePtrTime(t, "delivered", c.DeliveredAt, at.Add(time.Second))
			c, changed, err = st.Complete(t.Context(), "d1", "c", store.CommandFailed, `{"ok":false}`, at.Add(time.Minute))
			if err != nil || changed || c.Status != store.CommandDone || c.Result != `{"ok":true}` {
				t.Fatalf("a repeated answer changed the command: %+v %v %v", c, changed, err)
			}
			_, _, err = st.Complete(t.Context(), "d2", "c", store.CommandDone, "", at)
			wantErr(t, "another device's command", err, store.ErrNotFound)
			command(t, st, "held", "d1", store.CommandHeld, at, 0)
			if _, changed, err := st.Complete(t.Context(), "d1", "held", store.CommandDone, "", at); err != nil || changed {
				t.Fatalf("a held command completed: %v %v", changed, err)
			}
			command(t, st, "dl", "d1", store.CommandQueued, at, 0)
			must(t, st.MarkDelivered(t.Context(), "dl", at))
			c, changed, err = st.Complete(t.Context(), "d1", "dl", store.CommandFailed, "x", at.Add(time.Hour))
			if err != nil || !changed || c.Status != store.CommandFailed {
				t.Fatalf("complete a delivered command: %+v %v %v", c, changed, err)
			}
			samePtrTime(t, "delivery kept", c.DeliveredAt, at)
		}},
		{"Approve", []string{"Approve"}, func(t *testing.T, open Opener) {
			st := open(t)
			command(t, st, "h", "d1", store.CommandHeld, now(), 0)
			c, err := st.Approve(t.Context(), "h", "second@pd")
			if err != nil || c.Status != store.CommandQueued || c.ApprovedBy != "second@pd" {
				t.Fatalf("approve: %+v %v", c, err)
			}
			_, err = st.Approve(t.Context(), "h", "third@pd")
			wantErr(t, "approving twice", err, store.ErrConflict)
			if c := getCommand(t, st, "h"); c.ApprovedBy != "second@pd" {
				t.Fatalf("approver now %q", c.ApprovedBy)
			}
			_, err = st.Approve(t.Context(), "nope", "x")
			wantErr(t, "unknown command", err, store.ErrNotFound)
		}},
		{"ExpireCommands", []string{"ExpireCommands"}, func(t *testing.T, open Opener) {
			st := open(t)
			at := now()
			old := at.Add(-2 * time.Hour)
			for _, s := range []string{store.CommandQueued, store.CommandDelivered, store.CommandHeld, store.CommandDone} {
				command(t, st, s, "d1", s, old, time.Hour)
			}
			command(t, st, "fresh", "d1", store.CommandQueued, at, 0)
			cs, err := st.ExpireCommands(t.Context(), at)
			must(t, err)
			got := map[string]bool{}
			for _, c := range cs {
				got[c.ID] = true
			}
			if len(cs) != 3 || !got[store.CommandQueued] || !got[store.CommandDelivered] || !got[store.CommandHeld] {
				t.Fatalf("expired %v", cmdIDs(cs))
			}
			for id, want := range map[string]string{store.CommandHeld: store.CommandExpired, store.CommandDone: store.CommandDone,
				"fresh": store.CommandQueued} {
				if s := getCommand(t, st, id).Status; s != want {
					t.Fatalf("%s is %s, want %s", id, s, want)
				}
			}
			samePtrTime(t, "expired at", getCommand(t, st, store.CommandQueued).CompletedAt, at)
			if cs, err := st.ExpireCommands(t.Context(), at); err != nil || len(cs) != 0 {
				t.Fatalf("second sweep: %v %v", cmdIDs(cs), err)
			}
		}},
		{"ExpiryEndsEachCommandOnce", []string{"ExpireCommands", "Deliverable"}, func(t *testing.T, open Opener) {
			// The sweep and a device's redelivery (here, on several
			// connections at once) race for the same past-due commands:
			// each is returned, so counted and audited, by one of them.
			st := open(t)
			at := now()
			const n = 20
			for i := range n {
				command(t, st, fmt.Sprintf("c%02d", i), "d1", store.CommandQueued, at.Add(-2*time.Hour), time.Hour)
			}
			var mu sync.Mutex
			ended := map[string]int{}
			var wg sync.WaitGroup
			for w := range 4 {
				wg.Go(func() {
					var cs []store.Command
					var err error
					if w%2 == 0 {
						cs, err = st.ExpireCommands(t.Context(), at)
					} else {
						_, cs, err = st.Deliverable(t.Context(), "d1", at)
					}
					if err != nil {
						t.Error(err)
					}
					mu.Lock()
					for _, c := range cs {
						ended[c.ID]++
					}
					mu.Unlock()
				})
			}
			wg.Wait()
			if len(ended) != n {
				t.Fatalf("%d of %d commands reported expired", len(ended), n)
			}
			for id, k := range ended {
				if k != 1 {
					t.Errorf("%s reported expired %d times", id, k)
				}
			}
		}},
		{"UnfinishedCommands", []string{"UnfinishedCommands"}, func(t *testing.T, open Opener) {
			st := open(t)
			if bl, err := st.UnfinishedCommands(t.Context()); err != nil || len(bl) != 0 {
				t.Fatalf("empty store: %+v, %v", bl, err)
			}
			at := now()
			command(t, st, "q1", "d1", store.CommandQueued, at.Add(-time.Minute), 0)
			command(t, st, "q2", "d2", store.CommandQueued, at.Add(-3*time.Minute), 0)
			command(t, st, "dl", "d1", store.CommandDelivered, at.Add(-time.Hour), 2*time.Hour)
			command(t, st, "h", "d1", store.CommandHeld, at, 0)
			for _, s := range []string{store.CommandDone, store.CommandFailed, store.CommandExpired} {
				command(t, st, s, "d1", s, at.Add(-24*time.Hour), 0) // final: never counted
			}
			bl, err := st.UnfinishedCommands(t.Context())
			must(t, err)
			got := map[string]store.CommandBacklog{}
			for _, b := range bl {
				got[b.Status] = b
			}
			if len(bl) != 3 || got[store.CommandQueued].Count != 2 || got[store.CommandDelivered].Count != 1 || got[store.CommandHeld].Count != 1 {
				t.Fatalf("backlog %+v", bl)
			}
			sameTime(t, "oldest queued", got[store.CommandQueued].Oldest, at.Add(-3*time.Minute))
			sameTime(t, "oldest delivered", got[store.CommandDelivered].Oldest, at.Add(-time.Hour))
			sameTime(t, "oldest held", got[store.CommandHeld].Oldest, at)
		}},
		{"DeviceCommands", []string{"DeviceCommands"}, func(t *testing.T, open Opener) {
			st := open(t)
			at := now()
			for i, id := range []string{"c0", "c1", "c2", "c3"} {
				command(t, st, id, "d1", store.CommandDone, at.Add(time.Duration(i)*time.Minute), 0)
			}
			command(t, st, "x", "d2", store.CommandQueued, at.Add(time.Hour), 0)
			cs, err := st.DeviceCommands(t.Context(), "d1", 3)
			must(t, err)
			sameIDs(t, "newest first", cmdIDs(cs), "c3", "c2", "c1")
			// Lists leave the signed frames behind.
			if cs[0].Frame != nil || cs[0].Kind != "lock" {
				t.Fatalf("listed command %+v", cs[0])
			}
		}},
	}
}
