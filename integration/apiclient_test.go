package integration

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/agent"
	"github.com/cordon-mdm/cordon/apiclient"
	"github.com/cordon-mdm/cordon/internal/testenv"
)

// TestAPIClientDrivesTheMainFlows uses only the client generated from the
// OpenAPI document (apiclient), the way an integrator would: trust the
// server's CA by its fingerprint, list devices, lock one and wait for the
// agent's answer, file an incident, fill and read its response form, and
// get a refusal with its message. A document that stops describing these
// operations breaks the build of this test; one that describes them
// wrongly breaks its assertions.
func TestAPIClientDrivesTheMainFlows(t *testing.T) {
	e := testenv.New(t, "")
	ctx := t.Context()
	exec := &fakeExecutor{} // the agent answers the lock; the test machine stays unlocked
	a := e.StartAgent(e.MustEnroll(), agent.WithExecutor(exec))
	url := e.Server.ConsoleURL()

	if _, err := apiclient.ServerCAClient(ctx, url, strings.Repeat("ab", 32)); err == nil {
		t.Fatal("ServerCAClient trusted a root whose fingerprint is not the one given")
	}
	hc, err := apiclient.ServerCAClient(ctx, url, e.Server.CA.RootFingerprint())
	if err != nil {
		t.Fatal(err)
	}
	// Every answer the client decodes is also held to the document.
	hc.Transport = e.Validating(hc.Transport)
	as := func(role string) *apiclient.ClientWithResponses {
		c, err := apiclient.NewClientWithResponses(url, apiclient.WithHTTPClient(hc), apiclient.WithAPIKey(e.APIKey(role)))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	laso, user, auditor := as("laso"), as("user"), as("auditor")

	// List devices: the agent's device is there, and online.
	testenv.Eventually(t, 15*time.Second, "the agent's device online in listDevices", func() bool {
		r, err := laso.ListDevicesWithResponse(ctx)
		expect(t, "listDevices", r, err, http.StatusOK)
		if r.JSON200 == nil {
			t.Fatalf("listDevices answered %s", r.Body)
		}
		for _, d := range r.JSON200.Devices {
			if d.Id.String() == a.DeviceID() {
				return d.Online
			}
		}
		return false
	})

	// Lock it, and poll getCommand until the agent has answered.
	issued, err := laso.IssueCommandWithResponse(ctx, a.DeviceID(), apiclient.IssueCommandJSONRequestBody{Kind: "lock"})
	expect(t, "issueCommand lock", issued, err, http.StatusAccepted)
	if issued.JSON202 == nil {
		t.Fatalf("issueCommand answered %s", issued.Body)
	}
	id := issued.JSON202.Id.String()
	var cmd *apiclient.Command
	testenv.Eventually(t, 15*time.Second, "lock "+id+" done", func() bool {
		r, err := laso.GetCommandWithResponse(ctx, id)
		expect(t, "getCommand", r, err, http.StatusOK)
		if r.JSON200 == nil {
			t.Fatalf("getCommand answered %s", r.Body)
		}
		cmd = r.JSON200
		return cmd.Status == apiclient.CommandStatusDone
	})
	if exec.count("lock") != 1 || cmd.CompletedAt == nil || cmd.Kind != apiclient.CommandKindLock {
		t.Fatalf("lock ran %d times on the agent; command %+v", exec.count("lock"), cmd)
	}

	// A user files the incident for the device.
	location := "bus 14, eastbound"
	filed, err := user.CreateIncidentWithResponse(ctx, apiclient.CreateIncidentJSONRequestBody{DeviceId: a.DeviceID(),
		Kind: "loss_of_control", StartedAt: time.Now().UTC().Add(-20 * time.Minute), Location: &location})
	expect(t, "createIncident", filed, err, http.StatusCreated)
	inc := filed.JSON201
	if inc == nil || inc.Id == "" || inc.DeviceId != a.DeviceID() || inc.Status != "reported" || inc.Location != location {
		t.Fatalf("createIncident answered %s", filed.Body)
	}

	// The LASO fills a field of its response form; the auditor reads it.
	cause := "left on the seat"
	updated, err := laso.UpdateIncidentFormWithResponse(ctx, inc.Id, apiclient.UpdateIncidentFormJSONRequestBody{SuspectedCause: &cause})
	expect(t, "updateIncidentForm", updated, err, http.StatusOK)
	read, err := auditor.GetIncidentFormWithResponse(ctx, inc.Id)
	expect(t, "getIncidentForm", read, err, http.StatusOK)
	form := read.JSON200
	if form == nil || form.IncidentId != inc.Id || form.Location != location || form.Checklist.SuspectedCause != cause {
		t.Fatalf("getIncidentForm answered %s", read.Body)
	}

	// An auditor may read but not lock: 403, and the Error says why.
	refused, err := auditor.IssueCommandWithResponse(ctx, a.DeviceID(), apiclient.IssueCommandJSONRequestBody{Kind: "lock"})
	expect(t, "auditor's issueCommand lock", refused, err, http.StatusForbidden)
	if refused.JSON403 == nil || !strings.Contains(refused.JSON403.Error, "role auditor may not") {
		t.Fatalf("auditor's lock refused with %s", refused.Body)
	}
}

// expect fails the test unless the call went through and answered want.
func expect(t *testing.T, what string, r interface {
	StatusCode() int
	GetBody() []byte
}, err error, want int) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if got := r.StatusCode(); got != want {
		t.Fatalf("%s: %d %s, want %d", what, got, r.GetBody(), want)
	}
}
