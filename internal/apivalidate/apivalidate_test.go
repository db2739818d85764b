package apivalidate_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/cordon-mdm/cordon/internal/apivalidate"
	"github.com/cordon-mdm/cordon/server/api"
)

// device is one device as GET /api/v1/devices answers it, every field the
// document requires present.
func device() map[string]any {
	return map[string]any{"id": "0b7e4f3a-1d2c-4b5a-9e8f-7a6b5c4d3e2f", "name": "laptop", "platform": "linux", "online": true,
		"last_seen": nil, "compliant": nil, "compliance": "unknown", "posture": nil, "hostname": "laptop", "status": "active",
		"enrolled_at": "2026-01-02T03:04:05.000000Z", "findings": []any{}, "capability_version": 12, "capabilities": []string{"posture"},
		"key_protection": "software"}
}

// reports collects what the Transport reports.
type reports struct {
	mu  sync.Mutex
	got []string
}

func (r *reports) Report(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, fmt.Sprintf(format, args...))
}

func (r *reports) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.got
	r.got = nil
	return out
}

// TestTransportCatchesWhatTheDocumentDoesNotDescribe runs a real HTTP
// server that answers GET /api/v1/devices as told: the answer the document
// describes passes; one more field in a device, a status the operation
// does not list, a content type it does not list, and a missing required
// field are each reported.
func TestTransportCatchesWhatTheDocumentDoesNotDescribe(t *testing.T) {
	v, err := apivalidate.New(api.OpenAPIDocument())
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu     sync.Mutex
		status int
		ctype  string
		body   any
	)
	answer := func(s int, ct string, b any) {
		mu.Lock()
		defer mu.Unlock()
		status, ctype, body = s, ct, b
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.Header().Set("Content-Type", ctype)
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(body)
	}))
	defer srv.Close()
	var rep reports
	client := &http.Client{Transport: &apivalidate.Transport{Base: srv.Client().Transport, Validator: v, Report: rep.Report}}
	get := func(path string) {
		t.Helper()
		resp, err := client.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}

	answer(200, "application/json", map[string]any{"devices": []any{device()}})
	get("/api/v1/devices")
	if got := rep.take(); len(got) != 0 {
		t.Fatalf("a described answer was reported: %v", got)
	}

	extra := device()
	extra["foo"] = "bar"
	answer(200, "application/json", map[string]any{"devices": []any{extra}})
	get("/api/v1/devices")
	if got := rep.take(); len(got) != 1 || !strings.Contains(got[0], "foo") {
		t.Errorf("a device with an undescribed field foo: reports %q, want one naming foo", got)
	}

	answer(http.StatusTeapot, "application/json", map[string]any{"error": "teapot"})
	get("/api/v1/devices")
	if got := rep.take(); len(got) != 1 || !strings.Contains(got[0], "418") {
		t.Errorf("an undocumented status 418: reports %q, want one", got)
	}

	answer(200, "text/plain", map[string]any{"devices": []any{device()}})
	get("/api/v1/devices")
	if got := rep.take(); len(got) != 1 {
		t.Errorf("an undocumented content type: reports %q, want one", got)
	}

	missing := device()
	delete(missing, "status")
	answer(200, "application/json", map[string]any{"devices": []any{missing}})
	get("/api/v1/devices")
	if got := rep.take(); len(got) != 1 || !strings.Contains(got[0], "status") {
		t.Errorf("a device without its required status: reports %q, want one", got)
	}

	// A refusal the operation lists, with the Error schema, passes; one
	// with a body that is not an Error does not.
	answer(http.StatusUnauthorized, "application/json", map[string]any{"error": "unauthenticated"})
	client.Transport.(*apivalidate.Transport).Base = headerAdder{srv.Client().Transport, "WWW-Authenticate", `Bearer realm="cordon"`}
	get("/api/v1/devices")
	if got := rep.take(); len(got) != 0 {
		t.Errorf("a described 401 was reported: %v", got)
	}
	answer(http.StatusUnauthorized, "application/json", map[string]any{"message": "no"})
	get("/api/v1/devices")
	if got := rep.take(); len(got) != 1 {
		t.Errorf("a 401 whose body is not an Error: reports %q, want one", got)
	}

	// A path that is no operation of the document is not held to it.
	answer(http.StatusTeapot, "text/html", "console")
	get("/login")
	if got := rep.take(); len(got) != 0 {
		t.Errorf("a path outside the document was reported: %v", got)
	}
}

// headerAdder sets a header on every response (the 401's WWW-Authenticate,
// which the document requires).
type headerAdder struct {
	base        http.RoundTripper
	name, value string
}

func (h headerAdder) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := h.base.RoundTrip(r)
	if err == nil {
		resp.Header.Set(h.name, h.value)
	}
	return resp, err
}
