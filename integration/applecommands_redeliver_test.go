package integration

import (
	"net/http"
	"testing"
	"time"
)

// A lock the queue stored but could not hand to nanomdm (here: the
// device's enrollment row was gone, as after a crash between the two
// stores) is not lost: it stays queued, and goes to the device when it
// next connects.
func TestAppleCommandTheQueueHoldsGoesAtTheNextConnect(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn func(testing.TB) string) {
		e, _ := appleEnv(t, dsn(t))
		admin := e.APIKey("it-admin")
		const udid = "00008110-REDELIVER0000001"
		dev, id := appleDevice(t, e, udid, "iPhone15,2")
		if err := e.Server.Store.DB().Exec("DELETE FROM apple_enrollments WHERE device_id = ?", id).Error; err != nil {
			t.Fatal(err)
		}
		st, c := issue(t, e, admin, id, map[string]string{"kind": "lock"})
		if st != http.StatusAccepted || c.Status != "queued" {
			t.Fatalf("lock without an enrollment: HTTP %d %+v, want 202 queued", st, c)
		}
		if err := e.Server.Store.SaveAppleEnrollment(t.Context(), id, udid, time.Now().UTC()); err != nil {
			t.Fatal(err)
		}
		got := dev.Next(t)
		if got == nil || got.RequestType != "DeviceLock" || got.UUID != "DeviceLock."+c.ID {
			t.Fatalf("at its next connect the device got %+v, want the queued DeviceLock", got)
		}
		if d := getAppleCommand(t, e, admin, c.ID); d.Status != "delivered" {
			t.Fatalf("command %s, want delivered", d.Status)
		}
		dev.Answer(t, got.UUID, "Acknowledged", nil)
		if d := getAppleCommand(t, e, admin, c.ID); d.Status != "done" {
			t.Fatalf("command %s after the answer, want done", d.Status)
		}
	})
}
