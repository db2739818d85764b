package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/server/store"
)

func allowKeys(as []store.BluetoothAllow) []string {
	return ids(as, func(a store.BluetoothAllow) string { return fmt.Sprint(a.Address, "@", a.Scope) })
}

func allowList(t *testing.T, st *store.Store) []store.BluetoothAllow {
	t.Helper()
	as, err := st.BluetoothAllowList(t.Context())
	must(t, err)
	return as
}

func bluetoothContracts() []contract {
	return []contract{
		{"AddBluetoothAllow", []string{"AddBluetoothAllow", "BluetoothAllowList", "DeleteBluetoothAllow"}, func(t *testing.T, open Opener) {
			st := open(t)
			past := now().Add(-time.Hour)
			for _, a := range []store.BluetoothAllow{{Address: "AA:BB:CC:00:00:01", Scope: "agency", Name: "headset", Class: 0x240404},
				{Address: "00:11:22", Scope: "group:patrol"},
				{Address: "AA:BB:CC:00:00:01", Scope: "device:d1", ExpiresAt: &past}} {
				must(t, st.AddBluetoothAllow(t.Context(), &a))
				if a.ID == 0 {
					t.Fatal("an added entry has no id")
				}
			}
			as := allowList(t, st)
			// Expired entries are listed too: the caller's clock judges.
			sameIDs(t, "by address", allowKeys(as), "00:11:22@group:patrol", "AA:BB:CC:00:00:01@agency", "AA:BB:CC:00:00:01@device:d1")
			if as[1].Class != 0x240404 || as[1].Name != "headset" {
				t.Fatalf("entry read back as %+v", as[1])
			}
			samePtrTime(t, "expiry", as[2].ExpiresAt, past)
			if n, err := st.DeleteBluetoothAllow(t.Context(), "AA:BB:CC:00:00:01"); err != nil || n != 2 {
				t.Fatalf("delete removed %d, %v; want every entry of the address", n, err)
			}
			if n, err := st.DeleteBluetoothAllow(t.Context(), "AA:BB:CC:00:00:01"); err != nil || n != 0 {
				t.Fatalf("deleting again removed %d, %v", n, err)
			}
			sameIDs(t, "left", allowKeys(allowList(t, st)), "00:11:22@group:patrol")
		}},
		{"SaveBluetoothRequest", []string{"SaveBluetoothRequest", "GetBluetoothRequest", "ListBluetoothRequests"}, func(t *testing.T, open Opener) {
			st := open(t)
			at := now()
			for i, id := range []string{"r0", "r1", "r2"} {
				must(t, st.SaveBluetoothRequest(t.Context(), &store.BluetoothRequest{ID: id, DeviceID: "d1", Address: "AA:BB:CC:00:00:01",
					Requester: "officer", Supervisor: "sgt", Status: "pending", CreatedAt: at.Add(time.Duration(i) * time.Minute)}))
			}
			r, err := st.GetBluetoothRequest(t.Context(), "r1")
			must(t, err)
			r.Status, r.EndorsedBy, r.EndorsedAt = "endorsed", "sgt", &at
			must(t, st.SaveBluetoothRequest(t.Context(), r))
			r, err = st.GetBluetoothRequest(t.Context(), "r1")
			if err != nil || r.Status != "endorsed" || r.EndorsedBy != "sgt" || r.Requester != "officer" {
				t.Fatalf("endorsed request %+v %v", r, err)
			}
			samePtrTime(t, "endorsed at", r.EndorsedAt, at)
			rs, err := st.ListBluetoothRequests(t.Context())
			must(t, err)
			sameIDs(t, "newest first", ids(rs, func(r store.BluetoothRequest) string { return r.ID }), "r2", "r1", "r0")
			_, err = st.GetBluetoothRequest(t.Context(), "nope")
			wantErr(t, "unknown request", err, store.ErrNotFound)
		}},
		{"DecideBluetoothRequest", []string{"DecideBluetoothRequest"}, func(t *testing.T, open Opener) {
			st := open(t)
			at := now()
			for _, r := range []store.BluetoothRequest{{ID: "yes", Status: "endorsed"}, {ID: "no", Status: "endorsed"},
				{ID: "early", Status: "pending"}} {
				r.DeviceID, r.Address, r.CreatedAt = "d1", "AA:BB:CC:00:00:0"+r.ID[:1], at
				must(t, st.SaveBluetoothRequest(t.Context(), &r))
			}
			approve := func(id string) error {
				return st.DecideBluetoothRequest(t.Context(),
					&store.BluetoothRequest{ID: id, Status: "approved", DecidedBy: "it", DecidedAt: &at, Decision: "ok"},
					&store.BluetoothAllow{Address: "AA:BB:CC:00:00:01", Scope: "device:d1", ApprovedBy: "it", Request: id})
			}
			must(t, approve("yes"))
			r, _ := st.GetBluetoothRequest(t.Context(), "yes")
			if r.Status != "approved" || r.DecidedBy != "it" || r.Decision != "ok" {
				t.Fatalf("approved request %+v", r)
			}
			samePtrTime(t, "decided", r.DecidedAt, at)
			// Two IT staff deciding at once: the second finds it decided,
			// and its allow-list entry is not written.
			wantErr(t, "deciding twice", approve("yes"), store.ErrConflict)
			wantErr(t, "deciding before endorsement", approve("early"), store.ErrConflict)
			if as := allowList(t, st); len(as) != 1 || as[0].Request != "yes" {
				t.Fatalf("allow list %+v, want the one approval", as)
			}
			must(t, st.DecideBluetoothRequest(t.Context(), &store.BluetoothRequest{ID: "no", Status: "denied", DecidedBy: "it",
				DecidedAt: &at, Decision: "not needed"}, nil))
			if r, _ := st.GetBluetoothRequest(t.Context(), "no"); r.Status != "denied" || r.Decision != "not needed" {
				t.Fatalf("denied request %+v", r)
			}
			if p, _ := st.GetBluetoothRequest(t.Context(), "early"); p.Status != "pending" {
				t.Fatalf("a refused decision changed the request: %+v", p)
			}
			if n := len(allowList(t, st)); n != 1 {
				t.Fatalf("a denial added to the allow list: %d entries", n)
			}
		}},
	}
}
