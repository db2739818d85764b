package localapi

import (
	"context"
	"net/http"
	"testing"

	"github.com/cordon-mdm/cordon/agent/state"
	"github.com/cordon-mdm/cordon/protocol"
)

func TestStatus(t *testing.T) {
	fa := newFakeAgent()
	sock := serve(t, fa)
	st, err := Client{Socket: sock}.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.DeviceID != "self" || st.Connection != "connected" || !st.Since.Equal(fa.status.Since) {
		t.Errorf("status = %+v", st)
	}
	if st.Compliance != protocol.ComplianceUnknown {
		t.Errorf("compliance = %q, want %q when the server has not spoken", st.Compliance, protocol.ComplianceUnknown)
	}
	if len(st.Devices) != 2 || st.Devices[0].ID != "self" || st.Devices[1].ID != "phone" || st.Devices[1].Platform != "android" {
		t.Errorf("devices = %+v", st.Devices)
	}
	if st.Reports == nil || len(st.Reports) != 0 {
		t.Errorf("reports = %#v, want empty", st.Reports)
	}
}

func TestStatusServerWord(t *testing.T) {
	fa := newFakeAgent()
	fa.status.Compliance = protocol.ComplianceQuarantined
	fa.status.Quarantine = "disk not encrypted"
	fa.status.Devices = nil
	fa.status.Reports = []state.Report{{ID: "a", State: "spooled"}}
	sock := serve(t, fa)
	st, err := Client{Socket: sock}.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Compliance != protocol.ComplianceQuarantined || st.Quarantine != "disk not encrypted" {
		t.Errorf("compliance = %q / %q", st.Compliance, st.Quarantine)
	}
	// With no word from the server about the owner's devices, this one is listed.
	if len(st.Devices) != 1 || st.Devices[0].ID != "self" {
		t.Errorf("devices = %+v", st.Devices)
	}
	if len(st.Reports) != 1 || st.Reports[0].ID != "a" {
		t.Errorf("reports = %+v", st.Reports)
	}
}

func TestRoutes(t *testing.T) {
	sock := serve(t, newFakeAgent())
	c := rawClient(t, sock)
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{http.MethodPost, "/v1/status", http.StatusMethodNotAllowed},
		{http.MethodGet, "/v1/reports", http.StatusMethodNotAllowed},
		{http.MethodGet, "/v1/other", http.StatusNotFound},
	} {
		req, err := http.NewRequest(tc.method, "http://agent"+tc.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, resp.StatusCode, tc.want)
		}
	}
}
