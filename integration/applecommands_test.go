package integration

import (
	"encoding/hex"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/internal/testenv"
	"github.com/cordon-mdm/cordon/server"
	"github.com/cordon-mdm/cordon/server/applemdm"
	"github.com/cordon-mdm/cordon/server/applemdm/appletest"
	"github.com/cordon-mdm/cordon/server/commands"
)

// appleCommand is the API's command with the PIN only the LASO sees.
type appleCommand struct {
	commandJSON
	PIN string `json:"pin"`
}

// appleEnv is a server pushing to a recording APNs, holding a push
// certificate for the fake's topic.
func appleEnv(t *testing.T, dsn string, opts ...server.Option) (*testenv.Env, *appletest.APNs) {
	t.Helper()
	apns := appletest.NewAPNs(t)
	e := testenv.New(t, dsn, append(opts, server.WithAPNs(apns.URL(), apns.Roots()))...)
	certPEM, keyPEM := appletest.PushCert(t, appletest.Topic, 365*24*time.Hour)
	if _, err := e.Server.AppleMDM.StorePushCert(t.Context(), certPEM, keyPEM, "local:it", "local"); err != nil {
		t.Fatal(err)
	}
	return e, apns
}

// appleDevice enrolls a fake Apple device over /mdm and returns it with
// its device id.
func appleDevice(t *testing.T, e *testenv.Env, udid, product string) (*appletest.Device, string) {
	t.Helper()
	d := appletest.IssuedBy(t, e.Server.CA, e.Server.ConsoleURL()+"/mdm", udid, product)
	d.Client = e.Client()
	if d.Authenticate(t, product+" unit") != http.StatusOK || d.TokenUpdate(t) != http.StatusOK {
		t.Fatalf("enroll %s", product)
	}
	// Cordon's profile and the first posture queries come first.
	d.Settle(t)
	return d, applemdm.DeviceID(udid)
}

func getAppleCommand(t *testing.T, e *testenv.Env, key, id string) appleCommand {
	t.Helper()
	var c appleCommand
	if st := e.Do("GET", "/api/v1/commands/"+id, key, nil, &c); st != http.StatusOK {
		t.Fatalf("GET command %s: HTTP %d", id, st)
	}
	return c
}

// Issue 17 acceptance 2: a LASO's wipe of an iPhone is an EraseDevice in
// nanomdm's queue, pushed through APNs; the iPhone fetches it on its next
// connect and acknowledges it, the command ends done and the device is
// revoked. An it-admin's wipe is refused, as for agents, and so is a wipe
// without confirm.
func TestAppleWipeIsEraseDeviceAndEndsDone(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn func(testing.TB) string) {
		e, apns := appleEnv(t, dsn(t))
		udid := "00008110-WIPEPHONE0000001"
		dev, id := appleDevice(t, e, udid, "iPhone15,2")
		apns.Reset() // the enrollment's own pushes
		admin, laso := e.APIKey("it-admin"), e.APIKey("laso")

		if st, _ := issue(t, e, admin, id, map[string]string{"kind": "wipe", "confirm": id}); st != http.StatusForbidden {
			t.Fatalf("it-admin's wipe: HTTP %d, want 403", st)
		}
		for _, confirm := range []string{"", "someone-else"} {
			if st, _ := issue(t, e, laso, id, map[string]string{"kind": "wipe", "confirm": confirm}); st != http.StatusBadRequest {
				t.Fatalf("wipe with confirm %q: HTTP %d, want 400", confirm, st)
			}
		}
		if n := len(e.Audit(commands.ActionRefused)); n != 3 {
			t.Fatalf("%d %s entries, want 3", n, commands.ActionRefused)
		}
		if p := apns.Pushes(); len(p) != 0 || dev.Next(t) != nil {
			t.Fatalf("refused wipes reached the device: pushes %+v", p)
		}

		st, c := issue(t, e, laso, id, map[string]string{"kind": "wipe", "confirm": id})
		if st != http.StatusAccepted || c.Status != "delivered" {
			t.Fatalf("LASO's wipe: HTTP %d %+v, want 202 delivered", st, c)
		}
		pushes := apns.Pushes()
		if len(pushes) != 1 || pushes[0].Token != hex.EncodeToString([]byte("push-token-"+udid)) ||
			!strings.Contains(pushes[0].Body, "magic-"+udid) {
			t.Fatalf("pushes %+v, want one to the iPhone", pushes)
		}
		got := dev.Next(t)
		if got == nil || got.RequestType != "EraseDevice" || got.UUID != "EraseDevice."+c.ID {
			t.Fatalf("the iPhone fetched %+v, want the EraseDevice", got)
		}
		if _, ok := got.Fields["PIN"]; ok {
			t.Fatalf("an iPhone's EraseDevice carries a PIN: %+v", got.Fields)
		}
		if next := dev.Answer(t, got.UUID, applemdm.StatusAcknowledged, nil); next != nil {
			t.Fatalf("after the wipe the queue sent %+v", next)
		}
		if done := getAppleCommand(t, e, laso, c.ID); done.Status != "done" || done.Result == nil || done.Result.Status != "done" {
			t.Fatalf("wipe after Acknowledged: %+v", done)
		}
		var d deviceJSON
		if st := e.Do("GET", "/api/v1/devices/"+id, admin, nil, &d); st != http.StatusOK || d.Status != "revoked" {
			t.Fatalf("wiped device: HTTP %d %+v, want revoked", st, d)
		}
		for _, action := range []string{commands.ActionRequested, commands.ActionDelivered, commands.ActionCompleted} {
			if n := len(e.Audit(action)); n != 1 {
				t.Errorf("%d %s entries, want 1", n, action)
			}
		}
		if dev.Authenticate(t, "after the wipe") == http.StatusOK {
			t.Fatal("the wiped, revoked iPhone enrolled again")
		}
	})
}

// Lock is DeviceLock with the agency's message and phone number, and an
// Error answer fails it with Apple's error chain; a Mac's lock and wipe
// carry a 6-digit PIN that the LASO alone reads back; bluetooth_block,
// which Apple has no command for, is refused.
func TestAppleLockIsDeviceLockAndAMacGetsAPIN(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn func(testing.TB) string) {
		e, _ := appleEnv(t, dsn(t), server.WithAppleLockNotice("Property of Metro PD", "+1 555 0100"))
		admin, laso, auditor := e.APIKey("it-admin"), e.APIKey("laso"), e.APIKey("auditor")

		phone, phoneID := appleDevice(t, e, "00008110-LOCKPHONE0000001", "iPhone15,2")
		st, c := issue(t, e, admin, phoneID, map[string]string{"kind": "lock"})
		if st != http.StatusAccepted || c.Status != "delivered" {
			t.Fatalf("lock: HTTP %d %+v", st, c)
		}
		got := phone.Next(t)
		if got == nil || got.RequestType != "DeviceLock" || got.Fields["Message"] != "Property of Metro PD" ||
			got.Fields["PhoneNumber"] != "+1 555 0100" {
			t.Fatalf("the iPhone fetched %+v", got)
		}
		phone.Answer(t, got.UUID, applemdm.StatusError, map[string]any{"ErrorChain": []map[string]any{{
			"ErrorCode": 12021, "ErrorDomain": "MCMDMErrorDomain", "USEnglishDescription": "Passcode required"}}})
		failed := getAppleCommand(t, e, admin, c.ID)
		if failed.Status != "failed" || failed.Result == nil || !strings.Contains(failed.Result.Message, "MCMDMErrorDomain 12021: Passcode required") {
			t.Fatalf("lock after Error: %+v", failed)
		}
		if st, _ := issue(t, e, admin, phoneID, map[string]string{"kind": "bluetooth_block", "address": "AA:BB:CC:DD:EE:FF"}); st != http.StatusBadRequest {
			t.Fatalf("bluetooth_block to an iPhone: HTTP %d, want 400", st)
		}

		mac, macID := appleDevice(t, e, "00008110-LOCKMAC00000001", "Mac14,2")
		pin := regexp.MustCompile(`^[0-9]{6}$`)
		for _, kind := range []string{"lock", "wipe"} {
			st, c := issue(t, e, laso, macID, map[string]string{"kind": kind, "confirm": macID})
			if st != http.StatusAccepted {
				t.Fatalf("Mac %s: HTTP %d", kind, st)
			}
			got := mac.Next(t)
			want := map[string]string{"lock": "DeviceLock", "wipe": "EraseDevice"}[kind]
			seen := getAppleCommand(t, e, laso, c.ID)
			if got == nil || got.RequestType != want || !pin.MatchString(seen.PIN) || got.Fields["PIN"] != seen.PIN {
				t.Fatalf("Mac %s: fetched %+v, the LASO reads PIN %q", kind, got, seen.PIN)
			}
			for _, key := range []string{admin, auditor} {
				if other := getAppleCommand(t, e, key, c.ID); other.PIN != "" {
					t.Fatalf("a non-LASO reads the Mac's PIN")
				}
			}
			for _, a := range e.Audit("") {
				for _, v := range a.Details {
					if strings.Contains(v, seen.PIN) {
						t.Fatalf("the PIN is in the audit entry %+v", a)
					}
				}
			}
			mac.Answer(t, got.UUID, applemdm.StatusAcknowledged, nil)
		}
	})
}
