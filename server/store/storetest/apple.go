package storetest

import (
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver SchemaURL is opened with

	"github.com/cordon-mdm/cordon/server/store"
)

func appleContracts() []contract {
	return []contract{
		{"SchemaDB", []string{"SchemaDB"}, func(t *testing.T, open Opener) {
			st := open(t)
			db, err := st.SchemaDB(t.Context(), "nanomdm")
			if st.Dialect() != "postgres" {
				if !errors.Is(err, store.ErrNotPostgres) {
					t.Fatalf("SchemaDB on %s: %v, want ErrNotPostgres", st.Dialect(), err)
				}
				return
			}
			must(t, err)
			defer db.Close()
			// nanomdm's tables are there, apart from Cordon's devices.
			var n int
			must(t, db.QueryRowContext(t.Context(), "SELECT count(*) FROM push_certs").Scan(&n))
			var schema string
			must(t, db.QueryRowContext(t.Context(), "SELECT current_schema()").Scan(&schema))
			if !strings.HasSuffix(schema, "_nanomdm") {
				t.Fatalf("companion schema %q", schema)
			}
			if _, err := db.ExecContext(t.Context(), "SELECT udid FROM apple_enrollments"); err == nil {
				t.Fatal("Cordon's tables are visible from the companion schema")
			}
			if _, err := st.SchemaDB(t.Context(), "nothing"); err == nil {
				t.Fatal("a schema no migration made was opened")
			}
		}},
		{"SchemaURL", []string{"SchemaURL"}, func(t *testing.T, open Opener) {
			st := open(t)
			u, err := st.SchemaURL(t.Context(), "ca")
			if st.Dialect() != "postgres" {
				if !errors.Is(err, store.ErrNotPostgres) {
					t.Fatalf("SchemaURL on %s: %v, want ErrNotPostgres", st.Dialect(), err)
				}
				return
			}
			must(t, err)
			db, err := sql.Open("pgx", u)
			must(t, err)
			defer db.Close()
			// The CA's tables are there, and Cordon's are not.
			var schema string
			must(t, db.QueryRowContext(t.Context(), "SELECT current_schema()").Scan(&schema))
			if !strings.HasSuffix(schema, "_ca") {
				t.Fatalf("companion schema %q", schema)
			}
			var n int
			must(t, db.QueryRowContext(t.Context(), "SELECT count(*) FROM revoked_x509_certs").Scan(&n))
			if _, err := db.ExecContext(t.Context(), "SELECT id FROM devices"); err == nil {
				t.Fatal("Cordon's tables are visible from the companion schema")
			}
			if _, err := st.SchemaURL(t.Context(), "nothing"); err == nil {
				t.Fatal("a schema no migration made was named")
			}
		}},
		{"AppleEnrollment", []string{"SaveAppleEnrollment", "GetAppleEnrollment", "GetAppleEnrollmentOfUDID", "DueAppleEnrollments", "UpdateAppleEnrollment"}, func(t *testing.T, open Opener) {
			st := open(t)
			at := now()
			if _, err := st.GetAppleEnrollment(t.Context(), "a1"); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("unknown enrollment: %v, want ErrNotFound", err)
			}
			if err := st.UpdateAppleEnrollment(t.Context(), "a1", map[string]any{"supervised": true}, at); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("update of unknown enrollment: %v, want ErrNotFound", err)
			}
			must(t, st.SaveAppleEnrollment(t.Context(), "a1", "UDID-1", at))
			must(t, st.SaveAppleEnrollment(t.Context(), "a2", "UDID-2", at))
			must(t, st.UpdateAppleEnrollment(t.Context(), "a2", map[string]any{"queried_at": at, "supervised": true,
				"lost_mode_incident": "inc-1", "lost_mode_at": at}, at))
			if err := st.UpdateAppleEnrollment(t.Context(), "a2", map[string]any{"udid": "x"}, at); err == nil {
				t.Fatal("the UDID was settable through UpdateAppleEnrollment")
			}
			e, err := st.GetAppleEnrollment(t.Context(), "a2")
			must(t, err)
			if e.UDID != "UDID-2" || !e.Supervised || e.LostModeIncident != "inc-1" || e.LostModeAt == nil || e.QueriedAt == nil || !e.QueriedAt.Equal(at) {
				t.Fatalf("enrollment after update: %+v", e)
			}
			// Never queried comes first; one asked at or after the line is
			// not due.
			es, err := st.DueAppleEnrollments(t.Context(), at.Add(time.Second))
			must(t, err)
			if len(es) != 2 || es[0].DeviceID != "a1" || es[1].DeviceID != "a2" {
				t.Fatalf("due: %+v", es)
			}
			es, err = st.DueAppleEnrollments(t.Context(), at)
			must(t, err)
			if len(es) != 1 || es[0].DeviceID != "a1" {
				t.Fatalf("due before the query: %+v", es)
			}
			if e, err := st.GetAppleEnrollmentOfUDID(t.Context(), "UDID-2"); err != nil || e.DeviceID != "a2" {
				t.Fatalf("enrollment of UDID-2: %+v %v", e, err)
			}
			if _, err := st.GetAppleEnrollmentOfUDID(t.Context(), "UDID-9"); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("unknown UDID: %v, want ErrNotFound", err)
			}
			// The same UDID re-enrolled under a new device id moves.
			must(t, st.SaveAppleEnrollment(t.Context(), "a3", "UDID-1", at.Add(time.Minute)))
			if _, err := st.GetAppleEnrollment(t.Context(), "a1"); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("old device id kept the re-enrolled UDID: %v", err)
			}
			e, err = st.GetAppleEnrollment(t.Context(), "a3")
			must(t, err)
			if e.UDID != "UDID-1" {
				t.Fatalf("re-enrolled: %+v", e)
			}
			// Saving again keeps supervision and lost mode.
			must(t, st.SaveAppleEnrollment(t.Context(), "a2", "UDID-2", at.Add(time.Hour)))
			if e, err = st.GetAppleEnrollment(t.Context(), "a2"); err != nil || !e.Supervised || e.LostModeIncident != "inc-1" {
				t.Fatalf("re-saved: %+v %v", e, err)
			}
		}},
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
