package applemdm_test

import (
	"context"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/micromdm/nanomdm/storage/diskv"
	"github.com/micromdm/plist"

	"github.com/cordon-mdm/cordon/server/applemdm"
	"github.com/cordon-mdm/cordon/server/applemdm/appletest"
)

// enrolled checks a fake iPhone in (Authenticate, TokenUpdate) and
// returns it with its Cordon device id.
func (e *env) enrolled(t *testing.T, udid string) (*appletest.Device, string) {
	t.Helper()
	dev := appletest.IssuedBy(t, e.ca, e.url, udid, "iPhone15,2")
	if code := dev.Authenticate(t, "Car 7"); code != http.StatusOK {
		t.Fatalf("authenticate: HTTP %d\n%s", code, e.log)
	}
	if code := dev.TokenUpdate(t); code != http.StatusOK {
		t.Fatalf("token update: HTTP %d\n%s", code, e.log)
	}
	return dev, applemdm.DeviceID(udid)
}

func TestSendQueuesPushesAndRoutesTheAnswer(t *testing.T) {
	apns := appletest.NewAPNs(t)
	e := newEnv(t, applemdm.WithAPNs(apns.URL(), apns.Roots()))
	udid := "00008110-0001A2B3C4D5E6F7"
	dev, id := e.enrolled(t, udid)
	certPEM, keyPEM := appletest.PushCert(t, appletest.Topic, 365*24*time.Hour)
	if err := diskv.New(e.dir).StorePushCert(t.Context(), certPEM, keyPEM); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []applemdm.Answer
	e.mdm.Handle("DeviceInformation", func(_ context.Context, a applemdm.Answer) error {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, a)
		return nil
	})

	if err := e.mdm.Send(t.Context(), id, applemdm.Command{RequestType: "DeviceInformation", Ref: "q1",
		Payload: map[string]any{"Queries": []string{"OSVersion"}}}); err != nil {
		t.Fatal(err)
	}
	pushes := apns.Pushes()
	wantToken := hex.EncodeToString([]byte("push-token-" + udid))
	if len(pushes) != 1 || pushes[0].Token != wantToken ||
		!strings.Contains(pushes[0].Body, "magic-"+udid) || pushes[0].Client == nil {
		t.Fatalf("pushes %+v, want one to token %s with the push magic and the push certificate", pushes, wantToken)
	}

	c := dev.Next(t)
	if c == nil || c.RequestType != "DeviceInformation" || c.UUID != "DeviceInformation.q1" {
		t.Fatalf("device fetched %+v, want the DeviceInformation query", c)
	}
	if qs, _ := c.Fields["Queries"].([]any); len(qs) != 1 || qs[0] != "OSVersion" {
		t.Fatalf("queries %v", c.Fields["Queries"])
	}
	// NotNow is nanomdm's: no handler sees it, and the command comes back.
	if again := dev.Answer(t, c.UUID, applemdm.StatusNotNow, nil); again != nil {
		t.Fatalf("after NotNow the queue offered %+v at once", again)
	}
	if len(got) != 0 {
		t.Fatalf("NotNow reached the handler: %+v", got)
	}
	c = dev.Next(t)
	if c == nil || c.UUID != "DeviceInformation.q1" {
		t.Fatalf("after NotNow and a new connect the device got %+v, want the query again", c)
	}
	if next := dev.Answer(t, c.UUID, applemdm.StatusAcknowledged,
		map[string]any{"QueryResponses": map[string]any{"OSVersion": "17.5"}}); next != nil {
		t.Fatalf("queue not empty after the answer: %+v", next)
	}
	if len(got) != 1 || got[0].DeviceID != id || got[0].UDID != udid || got[0].Ref != "q1" || got[0].Status != applemdm.StatusAcknowledged {
		t.Fatalf("handler got %+v", got)
	}
	var res struct{ QueryResponses map[string]string }
	if err := plist.Unmarshal(got[0].Raw, &res); err != nil || res.QueryResponses["OSVersion"] != "17.5" {
		t.Fatalf("raw answer %s: %v", got[0].Raw, err)
	}
	if got[0].Remote == "" || got[0].Remote == "apple-mdm" {
		t.Fatalf("answer remote %q, want the device's address", got[0].Remote)
	}
}

func TestSendRefusesAnUnenrolledDevice(t *testing.T) {
	e := newEnv(t)
	err := e.mdm.Send(t.Context(), "3f9a2c1e-0000-4000-8000-000000000000", applemdm.Command{RequestType: "DeviceLock", Ref: "x"})
	if !errors.Is(err, applemdm.ErrNotEnrolled) {
		t.Fatalf("send to an unknown device: %v, want ErrNotEnrolled", err)
	}
}

func TestAnHandlerErrorFailsTheRequestAndTheAnswerComesAgain(t *testing.T) {
	e := newEnv(t)
	dev, id := e.enrolled(t, "00008110-0009F8E7D6C5B4A3")
	calls := 0
	e.mdm.Handle("SecurityInfo", func(context.Context, applemdm.Answer) error {
		calls++
		if calls == 1 {
			return errors.New("database is down")
		}
		return nil
	})
	if err := e.mdm.Send(t.Context(), id, applemdm.Command{RequestType: "SecurityInfo", Ref: "s1"}); err != nil {
		t.Fatal(err)
	}
	c := dev.Next(t)
	if c == nil || c.UUID != "SecurityInfo.s1" {
		t.Fatalf("fetched %+v", c)
	}
	if code := dev.AnswerCode(t, c.UUID, applemdm.StatusAcknowledged, nil); code == http.StatusOK {
		t.Fatal("a failed handler still answered 200: the device would drop its answer")
	}
	// The command is still nanomdm's to send, and the repeated answer lands.
	if next := dev.Answer(t, c.UUID, applemdm.StatusAcknowledged, nil); next != nil {
		t.Fatalf("next %+v", next)
	}
	if calls != 2 {
		t.Fatalf("handler called %d times, want 2", calls)
	}
}
