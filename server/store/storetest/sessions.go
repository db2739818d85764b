package storetest

import (
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/server/store"
)

func sessionContracts() []contract {
	return []contract{
		{"CreateSession", []string{"CreateSession", "GetSession", "SaveSession", "DeleteSession"}, func(t *testing.T, open Opener) {
			st := open(t)
			at := now()
			must(t, st.CreateSession(t.Context(), &store.Session{ID: "s", UserID: "u", Stage: "mfa", CSRF: "c", Source: "10.0.0.1",
				CreatedAt: at, LastSeen: at}))
			if err := st.CreateSession(t.Context(), &store.Session{ID: "s", UserID: "other"}); err == nil {
				t.Fatal("a second session with the same id was stored")
			}
			se, err := st.GetSession(t.Context(), "s")
			if err != nil || se.UserID != "u" || se.Stage != "mfa" || se.CSRF != "c" || se.Source != "10.0.0.1" {
				t.Fatalf("session %+v %v", se, err)
			}
			se.Stage, se.PendingTOTP, se.LastSeen = "active", "", at.Add(time.Minute)
			must(t, st.SaveSession(t.Context(), se))
			se, _ = st.GetSession(t.Context(), "s")
			if se.Stage != "active" {
				t.Fatalf("saved stage %q", se.Stage)
			}
			sameTime(t, "last seen", se.LastSeen, at.Add(time.Minute))
			sameTime(t, "created", se.CreatedAt, at)
			// Of two who end a session, one is told it did.
			if ok, err := st.DeleteSession(t.Context(), "s"); err != nil || !ok {
				t.Fatalf("delete: %v %v", ok, err)
			}
			if ok, err := st.DeleteSession(t.Context(), "s"); err != nil || ok {
				t.Fatalf("delete again: %v %v", ok, err)
			}
			_, err = st.GetSession(t.Context(), "s")
			wantErr(t, "deleted session", err, store.ErrNotFound)
		}},
		{"SessionsIdleSince", []string{"SessionsIdleSince"}, func(t *testing.T, open Opener) {
			st := open(t)
			at := now()
			for _, se := range []store.Session{{ID: "idle", CreatedAt: at.Add(-time.Hour), LastSeen: at.Add(-20 * time.Minute)},
				{ID: "busy", CreatedAt: at.Add(-time.Hour), LastSeen: at},
				{ID: "old", CreatedAt: at.Add(-13 * time.Hour), LastSeen: at},
				{ID: "edge", CreatedAt: at.Add(-12 * time.Hour), LastSeen: at.Add(-15 * time.Minute)}} {
				se.UserID, se.Stage = "u", "active"
				must(t, st.CreateSession(t.Context(), &se))
			}
			ss, err := st.SessionsIdleSince(t.Context(), at.Add(-15*time.Minute), at.Add(-12*time.Hour))
			must(t, err)
			got := map[string]bool{}
			for _, se := range ss {
				got[se.ID] = true
			}
			if len(ss) != 2 || !got["idle"] || !got["old"] {
				t.Fatalf("idle sessions %v, want idle and old (the boundaries are not idle)", got)
			}
		}},
	}
}
