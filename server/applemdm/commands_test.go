package applemdm_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/server/applemdm"
	"github.com/cordon-mdm/cordon/server/applemdm/appletest"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/commands"
	"github.com/cordon-mdm/cordon/server/store"
)

type noHub struct{}

func (noHub) Send(string, []byte) bool { return false }

type revoked struct {
	mu  sync.Mutex
	ids []string
}

func (r *revoked) Revoke(_ context.Context, id, _, _, _ string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ids = append(r.ids, id)
	return nil
}

// queue is the real command queue over e's store, carried by the
// courier, with revocations recorded.
func (e *env) queue(t *testing.T, opts ...applemdm.CourierOption) (*commands.Service, *revoked) {
	t.Helper()
	_, key, _ := ed25519.GenerateKey(nil)
	rev := &revoked{}
	q := commands.New(e.st, audit.New(e.st, nil), key, noHub{}, rev)
	q.Carry(applemdm.NewCourier(e.mdm, q, opts...))
	return q, rev
}

func (e *env) enrolledAs(t *testing.T, udid, product string) (*appletest.Device, string) {
	t.Helper()
	dev := appletest.IssuedBy(t, e.ca, e.url, udid, product)
	if dev.Authenticate(t, "unit "+product) != http.StatusOK || dev.TokenUpdate(t) != http.StatusOK {
		t.Fatalf("enroll %s\n%s", product, e.log)
	}
	return dev, applemdm.DeviceID(udid)
}

func (e *env) result(t *testing.T, id string) (*store.Command, protocol.CommandResult) {
	t.Helper()
	c, err := e.st.GetCommand(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	var r protocol.CommandResult
	if c.Result != "" {
		if err := json.Unmarshal([]byte(c.Result), &r); err != nil {
			t.Fatal(err)
		}
	}
	return c, r
}

// An iPhone's lock is a DeviceLock with the agency's message and phone
// number and no PIN; Apple's Error answer fails the command with Apple's
// error chain.
func TestLockIsDeviceLockAndAnErrorFailsIt(t *testing.T) {
	e := newEnv(t)
	q, _ := e.queue(t, applemdm.WithLockNotice("Property of Metro PD", "+1 555 0100"))
	dev, id := e.enrolledAs(t, "00008110-LOCKPHONE0000001", "iPhone15,2")
	c, err := q.Issue(t.Context(), commands.Request{DeviceID: id, Kind: protocol.CommandLock, Actor: "user:it@pd.example",
		Role: "it-admin", Source: "test"})
	if err != nil || c.Status != store.CommandDelivered {
		t.Fatalf("lock: %+v %v\n%s", c, err, e.log)
	}
	got := dev.Next(t)
	if got == nil || got.RequestType != "DeviceLock" || got.UUID != "DeviceLock."+c.ID ||
		got.Fields["Message"] != "Property of Metro PD" || got.Fields["PhoneNumber"] != "+1 555 0100" {
		t.Fatalf("device fetched %+v", got)
	}
	if _, ok := got.Fields["PIN"]; ok || q.Secret(c) != "" {
		t.Fatalf("an iPhone's lock carries a PIN: %+v", got.Fields)
	}
	if next := dev.Answer(t, got.UUID, applemdm.StatusError, map[string]any{"ErrorChain": []map[string]any{{
		"ErrorCode": 12021, "ErrorDomain": "MCMDMErrorDomain", "USEnglishDescription": "The device is not supervised"}}}); next != nil {
		t.Fatalf("next %+v", next)
	}
	done, r := e.result(t, c.ID)
	if done.Status != store.CommandFailed || !strings.Contains(r.Message, "MCMDMErrorDomain 12021: The device is not supervised") {
		t.Fatalf("after Error: %s %+v", done.Status, r)
	}
}

// A Mac's lock and wipe carry a fresh 6-digit PIN, the one the queue
// hands the LASO; an acknowledged wipe is done and revokes the Mac once,
// though the Mac sends its answer twice; an answer to no queued command
// is dropped, not refused (the device would resend it forever).
func TestMacCommandsCarryAPINAndAWipeRevokes(t *testing.T) {
	e := newEnv(t)
	q, rev := e.queue(t)
	dev, id := e.enrolledAs(t, "00008110-MACWIPE000000001", "Mac14,2")
	pin := regexp.MustCompile(`^[0-9]{6}$`)
	lock, err := q.Issue(t.Context(), commands.Request{DeviceID: id, Kind: protocol.CommandLock, Actor: "user:laso@pd.example",
		Role: "laso", Source: "test"})
	if err != nil {
		t.Fatal(err)
	}
	got := dev.Next(t)
	if got == nil || got.RequestType != "DeviceLock" || !pin.MatchString(q.Secret(lock)) || got.Fields["PIN"] != q.Secret(lock) ||
		got.Fields["Message"] != applemdm.DefaultLockMessage {
		t.Fatalf("Mac lock %+v, secret %q", got, q.Secret(lock))
	}
	if strings.Contains(e.log.String(), q.Secret(lock)) {
		t.Fatal("the PIN is in the log")
	}
	dev.Answer(t, got.UUID, applemdm.StatusAcknowledged, nil)
	if c, _ := e.result(t, lock.ID); c.Status != store.CommandDone || len(rev.ids) != 0 {
		t.Fatalf("lock after Acknowledged: %s, revoked %v", c.Status, rev.ids)
	}

	wipe, err := q.Issue(t.Context(), commands.Request{DeviceID: id, Kind: protocol.CommandWipe, Confirm: id,
		Actor: "user:laso@pd.example", Role: "laso", Source: "test"})
	if err != nil {
		t.Fatal(err)
	}
	got = dev.Next(t)
	if got == nil || got.RequestType != "EraseDevice" || !pin.MatchString(q.Secret(wipe)) || got.Fields["PIN"] != q.Secret(wipe) {
		t.Fatalf("Mac wipe %+v, secret %q", got, q.Secret(wipe))
	}
	for i := 0; i < 2; i++ {
		if code := dev.AnswerCode(t, got.UUID, applemdm.StatusAcknowledged, nil); code != http.StatusOK {
			t.Fatalf("answer %d: HTTP %d\n%s", i+1, code, e.log)
		}
	}
	if c, _ := e.result(t, wipe.ID); c.Status != store.CommandDone || len(rev.ids) != 1 || rev.ids[0] != id {
		t.Fatalf("wipe after Acknowledged: %s, revoked %v", c.Status, rev.ids)
	}
	es, err := e.st.ListAudit(t.Context(), store.AuditQuery{Action: commands.ActionCompleted})
	if err != nil || len(es) != 2 {
		t.Fatalf("%d %s entries, want 2: %v", len(es), commands.ActionCompleted, err)
	}
	for _, a := range es {
		if strings.Contains(a.Details, q.Secret(lock)) || strings.Contains(a.Details, q.Secret(wipe)) {
			t.Fatalf("a PIN is in the audit trail: %s", a.Details)
		}
	}

	if code := dev.AnswerCode(t, "DeviceLock.no-such-command", applemdm.StatusAcknowledged, nil); code != http.StatusOK {
		t.Fatalf("answer to no queued command: HTTP %d", code)
	}
}
