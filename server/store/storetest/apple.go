package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/server/store"
)

func appleContracts() []contract {
	return []contract{
		{"CheckInDevice", []string{"CheckInDevice"}, func(t *testing.T, open Opener) {
			st := open(t)
			at := now()
			d := &store.Device{ID: "a1", Name: "iPhone", Platform: "ios", OSVersion: "17.0", Serial: "S1",
				Status: store.StatusActive, EnrolledAt: at, LastSeen: &at}
			if created, err := st.CheckInDevice(t.Context(), d); err != nil || !created {
				t.Fatalf("first check-in: created %v err %v", created, err)
			}
			// IT's choices survive the device's next word about itself.
			must(t, st.SetDeviceGroup(t.Context(), "a1", "patrol"))
			later := at.Add(time.Hour)
			again := &store.Device{ID: "a1", Name: "Car 12", Platform: "ios", OSVersion: "17.1", Serial: "S1",
				Status: store.StatusActive, EnrolledAt: later, LastSeen: &later}
			if created, err := st.CheckInDevice(t.Context(), again); err != nil || created {
				t.Fatalf("second check-in: created %v err %v", created, err)
			}
			got, err := st.GetDevice(t.Context(), "a1")
			must(t, err)
			if got.Name != "Car 12" || got.OSVersion != "17.1" || got.GroupName != "patrol" || !got.EnrolledAt.Equal(at) ||
				got.LastSeen == nil || !got.LastSeen.Equal(later) {
				t.Fatalf("after second check-in: %+v", got)
			}
			_, err = st.RevokeDevice(t.Context(), "a1", "lost", later)
			must(t, err)
			if _, err := st.CheckInDevice(t.Context(), again); !errors.Is(err, store.ErrConflict) {
				t.Fatalf("revoked device's check-in: %v, want ErrConflict", err)
			}
			if got, _ := st.GetDevice(t.Context(), "a1"); got.Status != store.StatusRevoked {
				t.Fatalf("revoked device reactivated: %+v", got)
			}
		}},
	}
}
