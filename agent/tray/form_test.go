package tray

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/agent/localapi"
	"github.com/cordon-mdm/cordon/agent/state"
	"github.com/cordon-mdm/cordon/protocol"
)

// fakeAgent is the running agent as the form sees it: it answers a fixed
// status and records every report it is given.
type fakeAgent struct {
	mu      sync.Mutex
	reports []protocol.IncidentReport
	bt      []protocol.BluetoothRequest
}

func (a *fakeAgent) Status(context.Context) (localapi.Status, error) {
	return localapi.Status{
		DeviceID:   "self",
		Devices:    []protocol.OwnedDevice{{ID: "self"}, {ID: "phone"}},
		Connection: "connected",
		Compliance: "unknown",
		Bluetooth:  []protocol.BluetoothDevice{{Address: "11:22:33:44:55:66", Name: "Radio Headset", Paired: true, Connected: true}},
	}, nil
}

func (a *fakeAgent) RequestBluetooth(_ context.Context, r protocol.BluetoothRequest, _ time.Duration) (state.Report, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.bt = append(a.bt, r)
	return state.Report{ID: "b1", State: "filed", Request: "req-7"}, nil
}

func (a *fakeAgent) Report(_ context.Context, r protocol.IncidentReport, _ time.Duration) (state.Report, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.reports = append(a.reports, r)
	return state.Report{ID: "r1", State: "filed", Incident: "inc-1"}, nil
}

// take returns the reports received so far and forgets them.
func (a *fakeAgent) take() []protocol.IncidentReport {
	a.mu.Lock()
	defer a.mu.Unlock()
	r := a.reports
	a.reports = nil
	return r
}

// startForm makes a form on a fake agent and serves it until the test ends.
func startForm(t *testing.T) (*Form, *fakeAgent) {
	t.Helper()
	fa := &fakeAgent{}
	f, err := NewForm(fa)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return after its context ended")
		}
	})
	return f, fa
}

// actionURL is where the form posts: the form's URL without the query.
func actionURL(t *testing.T, f *Form) string {
	t.Helper()
	u, err := url.Parse(f.URL(ModeLost))
	if err != nil {
		t.Fatal(err)
	}
	u.RawQuery = ""
	return u.String()
}

func do(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func get(t *testing.T, u string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, req)
}

func post(t *testing.T, u string, v url.Values) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(v.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return do(t, req)
}

// validForm is a complete, valid submission about the phone.
func validForm() url.Values {
	return url.Values{
		"mode":        {ModeLost},
		"device":      {"phone"},
		"kind":        {"total_loss"},
		"lock_state":  {"unlocked"},
		"started":     {"2025-03-01T10:30"},
		"over":        {"yes"},
		"ended":       {"2025-03-01T12:45"},
		"location":    {"  Union Station, platform 3  "},
		"description": {"Left it on the bench.\n"},
		"outside_us":  {"yes"},
	}
}

func TestFormShow(t *testing.T) {
	f, fa := startForm(t)

	code, body := get(t, f.URL(ModeLost))
	if code != http.StatusOK {
		t.Fatalf("GET lost form: %d\n%s", code, body)
	}
	for _, want := range []string{
		`value="self" selected`, // this device is preselected
		`value="phone"`,
		`<option value="total_loss" selected>`,
		"Report a lost or stolen device",
		"This device is connected; compliance unknown.",
		`action="/` + f.secret + `/report"`,
		`name="mode" value="lost"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("lost form lacks %q\n%s", want, body)
		}
	}
	if strings.Contains(body, `value="loss_of_control" selected`) {
		t.Error("lost form preselects loss_of_control too")
	}

	code, body = get(t, f.URL(ModeThisDevice))
	if code != http.StatusOK {
		t.Fatalf("GET this-device form: %d\n%s", code, body)
	}
	for _, want := range []string{`value="self" selected`, `value="phone"`, `<option value="loss_of_control" selected>`, "Report loss of control of this device"} {
		if !strings.Contains(body, want) {
			t.Errorf("this-device form lacks %q\n%s", want, body)
		}
	}
	if strings.Contains(body, `value="total_loss" selected`) {
		t.Error("this-device form preselects total_loss")
	}
	if r := fa.take(); len(r) != 0 {
		t.Errorf("showing the form reported %+v", r)
	}
}

func TestFormHeaders(t *testing.T) {
	f, _ := startForm(t)
	resp, err := http.Get(f.URL(ModeLost))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for h, want := range map[string]string{
		"X-Content-Type-Options": "nosniff",
		"Referrer-Policy":        "no-referrer",
		"Cache-Control":          "no-store",
	} {
		if got := resp.Header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("Content-Security-Policy = %q", csp)
	}
}

func TestFormForbidden(t *testing.T) {
	f, fa := startForm(t)
	good := actionURL(t, f)
	u, err := url.Parse(good)
	if err != nil {
		t.Fatal(err)
	}
	addr := u.Host
	_, port, _ := strings.Cut(addr, ":")

	// A wrong secret of the same length: change its first character.
	wrong := []byte(f.secret)
	if wrong[0] == 'A' {
		wrong[0] = 'B'
	} else {
		wrong[0] = 'A'
	}
	if len(wrong) != len(f.secret) || string(wrong) == f.secret {
		t.Fatal("bad test secret")
	}

	cases := []struct {
		name string
		url  string
		host string
	}{
		{"no secret", "http://" + addr + "/report?mode=lost", ""},
		{"root", "http://" + addr + "/", ""},
		{"empty secret", "http://" + addr + "//report?mode=lost", ""},
		{"wrong secret", "http://" + addr + "/" + string(wrong) + "/report?mode=lost", ""},
		{"secret prefix", "http://" + addr + "/" + f.secret[:len(f.secret)-1] + "/report?mode=lost", ""},
		{"rebinding", good + "?mode=lost", "evil.example:" + port},
		{"localhost name", good + "?mode=lost", "localhost:" + port},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, method := range []string{http.MethodGet, http.MethodPost} {
				var body io.Reader
				if method == http.MethodPost {
					body = strings.NewReader(validForm().Encode())
				}
				req, err := http.NewRequest(method, c.url, body)
				if err != nil {
					t.Fatal(err)
				}
				if method == http.MethodPost {
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				}
				if c.host != "" {
					req.Host = c.host
				}
				code, page := do(t, req)
				if code != http.StatusForbidden {
					t.Errorf("%s: %d, want 403\n%s", method, code, page)
				}
				if strings.Contains(page, "<form") {
					t.Errorf("%s: forbidden request got the form", method)
				}
			}
			if r := fa.take(); len(r) != 0 {
				t.Errorf("forbidden request reported %+v", r)
			}
		})
	}
}

func TestFormOtherRoutes(t *testing.T) {
	f, fa := startForm(t)
	base := strings.TrimSuffix(actionURL(t, f), "/report")

	if code, _ := get(t, base+"/other"); code != http.StatusNotFound {
		t.Errorf("GET other path: %d, want 404", code)
	}
	req, err := http.NewRequest(http.MethodPut, base+"/report", strings.NewReader(validForm().Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if code, _ := do(t, req); code != http.StatusMethodNotAllowed {
		t.Errorf("PUT: %d, want 405", code)
	}
	if r := fa.take(); len(r) != 0 {
		t.Errorf("reported %+v", r)
	}
}
