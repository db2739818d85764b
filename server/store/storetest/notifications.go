package storetest

import (
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/server/store"
)

func notificationIDs(ns []store.Notification) []string {
	return ids(ns, func(n store.Notification) string { return n.ID })
}

func notificationContracts() []contract {
	return []contract{
		{"QueueNotifications", []string{"QueueNotifications", "DueNotifications", "NotificationResult"}, func(t *testing.T, open Opener) {
			st := open(t)
			must(t, st.QueueNotifications(t.Context(), nil))
			at := now()
			must(t, st.QueueNotifications(t.Context(), []store.Notification{
				{ID: "n2", IncidentID: "i1", Channel: "email", Recipient: "laso@pd", Subject: "s", Body: "b", CreatedAt: at, NextAttempt: at},
				{ID: "n1", IncidentID: "i1", Channel: "email", Recipient: "iso@fbi", CreatedAt: at, NextAttempt: at},
				{ID: "n0", IncidentID: "i2", CreatedAt: at.Add(-time.Minute), NextAttempt: at.Add(-time.Minute)},
				{ID: "later", IncidentID: "i2", CreatedAt: at.Add(-time.Hour), NextAttempt: at.Add(time.Minute)},
			}))
			due, err := st.DueNotifications(t.Context(), at, 10)
			must(t, err)
			sameIDs(t, "due, oldest first", notificationIDs(due), "n0", "n1", "n2")
			if n := due[2]; n.Recipient != "laso@pd" || n.Subject != "s" || n.Body != "b" || n.Channel != "email" || n.SentAt != nil {
				t.Fatalf("notification %+v", n)
			}
			due, _ = st.DueNotifications(t.Context(), at, 2)
			sameIDs(t, "limit", notificationIDs(due), "n0", "n1")
			// n0 failed and waits; n1 went out.
			n0, n1 := due[0], due[1]
			n0.Attempts, n0.NextAttempt, n0.LastError = 1, at.Add(5*time.Minute), "connection refused"
			n1.Attempts, n1.SentAt = 1, &at
			must(t, st.NotificationResult(t.Context(), &n0))
			must(t, st.NotificationResult(t.Context(), &n1))
			due, _ = st.DueNotifications(t.Context(), at.Add(time.Minute), 10)
			sameIDs(t, "due a minute later", notificationIDs(due), "later", "n2")
			due, _ = st.DueNotifications(t.Context(), at.Add(5*time.Minute), 10)
			sameIDs(t, "due at the retry", notificationIDs(due), "later", "n0", "n2")
			if due[1].Attempts != 1 || due[1].LastError != "connection refused" {
				t.Fatalf("retried notification %+v", due[1])
			}
		}},
		{"IncidentNotifications", []string{"IncidentNotifications", "NotificationsForIncidents"}, func(t *testing.T, open Opener) {
			st := open(t)
			at := now()
			must(t, st.QueueNotifications(t.Context(), []store.Notification{
				{ID: "b", IncidentID: "i1", CreatedAt: at.Add(time.Minute), NextAttempt: at, SentAt: &at},
				{ID: "a", IncidentID: "i1", CreatedAt: at, NextAttempt: at},
				{ID: "c", IncidentID: "i2", CreatedAt: at, NextAttempt: at},
				{ID: "d", IncidentID: "i3", CreatedAt: at, NextAttempt: at},
			}))
			ns, err := st.IncidentNotifications(t.Context(), "i1")
			must(t, err)
			sameIDs(t, "incident's, oldest first", notificationIDs(ns), "a", "b")
			samePtrTime(t, "sent", ns[1].SentAt, at)
			ns, err = st.NotificationsForIncidents(t.Context(), []string{"i1", "i2"})
			must(t, err)
			sameIDs(t, "several incidents'", notificationIDs(ns), "a", "c", "b")
			if ns, err := st.NotificationsForIncidents(t.Context(), nil); err != nil || len(ns) != 0 {
				t.Fatalf("no incidents: %v %v", notificationIDs(ns), err)
			}
		}},
		{"UsersWithRoles", []string{"UsersWithRoles"}, func(t *testing.T, open Opener) {
			st := open(t)
			user(t, st, "1", "z-laso@pd", "laso")
			user(t, st, "2", "a-laso@pd", "laso")
			user(t, st, "3", "tac@pd", "tac")
			user(t, st, "4", "it@pd", "it-admin")
			us, err := st.UsersWithRoles(t.Context(), "laso", "tac")
			must(t, err)
			sameIDs(t, "by email", emails(us), "a-laso@pd", "tac@pd", "z-laso@pd")
			if us, err := st.UsersWithRoles(t.Context(), "auditor"); err != nil || len(us) != 0 {
				t.Fatalf("nobody holds auditor: %v %v", emails(us), err)
			}
		}},
	}
}
