package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/server/store"
)

// onlineContracts: with several processes on one database the online
// flag is the process's that holds the connection (issue 18).
func onlineContracts() []contract {
	return []contract{
		{"MarkDisconnected/another server's", []string{"MarkConnected", "MarkDisconnected"}, func(t *testing.T, open Opener) {
			st := open(t)
			enroll(t, st, store.Device{ID: "d1"})
			at := now()
			must(t, st.MarkConnected(t.Context(), "d1", "10.0.0.7", at, "a"))
			must(t, st.MarkConnected(t.Context(), "d1", "10.0.0.8", at.Add(time.Second), "b"))
			// a's connection is found gone after the device reconnected to b.
			must(t, st.MarkDisconnected(t.Context(), "d1", at.Add(2*time.Second), "a"))
			d := device(t, st, "d1")
			if !d.Online || d.OnlineServer != "b" || d.LastAddr != "10.0.0.8" {
				t.Fatalf("after a stale disconnect: online %v on %q from %q, want online on b from 10.0.0.8", d.Online, d.OnlineServer, d.LastAddr)
			}
			samePtrTime(t, "last seen after a stale disconnect", d.LastSeen, at.Add(time.Second))
			must(t, st.MarkDisconnected(t.Context(), "d1", at.Add(3*time.Second), "b"))
			if d := device(t, st, "d1"); d.Online {
				t.Fatal("online after the holder's disconnect")
			}
			samePtrTime(t, "last seen at the end", device(t, st, "d1").LastSeen, at.Add(3*time.Second))
		}},
		{"ReapOnline", []string{"ReapOnline", "MarkConnected"}, func(t *testing.T, open Opener) {
			st := open(t)
			at := now()
			for id, server := range map[string]string{"on-live": "a", "on-other-live": "b", "on-dead": "c", "on-dead2": "d", "single": "", "offline-dead": "c"} {
				enroll(t, st, store.Device{ID: id})
				must(t, st.MarkConnected(t.Context(), id, "10.0.0.1", at, server))
			}
			enroll(t, st, store.Device{ID: "never"})
			must(t, st.MarkDisconnected(t.Context(), "offline-dead", at, "c"))
			n, err := st.ReapOnline(t.Context(), []string{"a", "b"})
			must(t, err)
			if n != 2 {
				t.Fatalf("reaped %d devices, want 2 (those of c and d)", n)
			}
			online := func() []string {
				ds, err := st.ListDevices(t.Context())
				must(t, err)
				var on []string
				for _, d := range ds {
					if d.Online {
						on = append(on, d.ID)
					}
				}
				slices.Sort(on)
				return on
			}
			if got, want := online(), []string{"on-live", "on-other-live", "single"}; !slices.Equal(got, want) {
				t.Fatalf("online after the reap %v, want %v", got, want)
			}
			// The last process's devices go when it does; '' never.
			n, err = st.ReapOnline(t.Context(), nil)
			must(t, err)
			if got, want := online(), []string{"single"}; n != 2 || !slices.Equal(got, want) {
				t.Fatalf("with no process up: reaped %d, online %v, want 2 and %v", n, got, want)
			}
		}},
	}
}
