package tray

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
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

func TestFormSubmit(t *testing.T) {
	f, fa := startForm(t)

	code, body := post(t, actionURL(t, f), validForm())
	if code != http.StatusOK {
		t.Fatalf("POST: %d\n%s", code, body)
	}
	if !strings.Contains(body, "Report filed") || !strings.Contains(body, "inc-1") {
		t.Errorf("page does not say the report was filed as inc-1:\n%s", body)
	}

	got := fa.take()
	if len(got) != 1 {
		t.Fatalf("agent got %d reports, want 1: %+v", len(got), got)
	}
	r := got[0]
	wantStart := time.Date(2025, 3, 1, 10, 30, 0, 0, time.Local)
	wantEnd := time.Date(2025, 3, 1, 12, 45, 0, 0, time.Local)
	if r.DeviceID != "phone" || r.Kind != "total_loss" || r.LockState != "unlocked" {
		t.Errorf("device/kind/lock = %q/%q/%q", r.DeviceID, r.Kind, r.LockState)
	}
	if !r.StartedAt.Equal(wantStart) || r.StartedAt.Location() != time.Local {
		t.Errorf("StartedAt = %v (%v), want %v in time.Local", r.StartedAt, r.StartedAt.Location(), wantStart)
	}
	if r.EndedAt == nil || !r.EndedAt.Equal(wantEnd) || r.EndedAt.Location() != time.Local {
		t.Errorf("EndedAt = %v, want %v in time.Local", r.EndedAt, wantEnd)
	}
	if r.Location != "Union Station, platform 3" {
		t.Errorf("Location = %q (not trimmed?)", r.Location)
	}
	if r.Description != "Left it on the bench." {
		t.Errorf("Description = %q (not trimmed?)", r.Description)
	}
	if !r.OutsideUS {
		t.Error("OutsideUS = false")
	}
	if r.Reporter != "" || r.Latitude != nil || r.Longitude != nil {
		t.Errorf("form set fields it has no inputs for: %+v", r)
	}
	if err := r.Check(); err != nil {
		t.Errorf("reported an invalid report: %v", err)
	}
}

func TestFormSubmitOngoing(t *testing.T) {
	f, fa := startForm(t)
	v := validForm()
	v.Set("over", "no")
	v.Set("ended", "garbage") // ignored when it is not over
	v.Del("outside_us")
	v.Set("kind", "loss_of_control")
	v.Set("device", "self")
	code, body := post(t, actionURL(t, f), v)
	if code != http.StatusOK {
		t.Fatalf("POST: %d\n%s", code, body)
	}
	got := fa.take()
	if len(got) != 1 {
		t.Fatalf("agent got %d reports, want 1", len(got))
	}
	if r := got[0]; r.EndedAt != nil || r.OutsideUS || r.DeviceID != "self" || r.Kind != "loss_of_control" {
		t.Errorf("report = %+v", r)
	}
}

func TestFormSubmitRFC3339(t *testing.T) {
	f, fa := startForm(t)
	v := validForm()
	v.Set("started", "2025-03-01T10:30:00Z")
	v.Set("ended", "2025-03-01T11:00:00+01:00") // 10:00Z: before it started
	if code, body := post(t, actionURL(t, f), v); code != http.StatusBadRequest || !strings.Contains(body, "ended_at is before started_at") {
		t.Errorf("end before start: %d\n%s", code, body)
	}
	v.Set("ended", "2025-03-01T12:00:00+01:00")
	if code, body := post(t, actionURL(t, f), v); code != http.StatusOK {
		t.Fatalf("RFC 3339 times: %d\n%s", code, body)
	}
	got := fa.take()
	if len(got) != 1 || !got[0].StartedAt.Equal(time.Date(2025, 3, 1, 10, 30, 0, 0, time.UTC)) {
		t.Errorf("reports = %+v", got)
	}
}

func TestFormSubmitInvalid(t *testing.T) {
	f, fa := startForm(t)
	cases := []struct {
		name string
		edit func(url.Values)
		want string
	}{
		{"missing started", func(v url.Values) { v.Del("started") }, "When did it start?"},
		{"empty started", func(v url.Values) { v.Set("started", "") }, "When did it start?"},
		{"garbled started", func(v url.Values) { v.Set("started", "yesterday-ish") }, "When did it start?"},
		{"started without time", func(v url.Values) { v.Set("started", "2025-03-01") }, "When did it start?"},
		{"zero started", func(v url.Values) { v.Set("started", "0001-01-01T00:00:00Z") }, "started_at is required"},
		{"stolen", func(v url.Values) { v.Set("kind", "stolen") }, "kind must be loss_of_control, total_loss or compromise"},
		{"no kind", func(v url.Values) { v.Del("kind") }, "kind must be"},
		{"bad lock state", func(v url.Values) { v.Set("lock_state", "ajar") }, "lock_state must be"},
		{"garbled ended", func(v url.Values) { v.Set("ended", "soon") }, "When did it end?"},
		{"missing ended", func(v url.Values) { v.Del("ended") }, "When did it end?"},
		{"ended before started", func(v url.Values) { v.Set("ended", "2025-03-01T09:00") }, "ended_at is before started_at"},
		{"long location", func(v url.Values) { v.Set("location", strings.Repeat("x", 1025)) }, "location: longer than 1024 bytes"},
		{"long description", func(v url.Values) { v.Set("description", strings.Repeat("x", 8193)) }, "description: longer than 8192 bytes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := validForm()
			c.edit(v)
			code, body := post(t, actionURL(t, f), v)
			if code != http.StatusBadRequest {
				t.Errorf("status %d, want 400\n%s", code, body)
			}
			if !strings.Contains(body, `class="err"`) || !strings.Contains(body, c.want) {
				t.Errorf("page lacks an error saying %q:\n%s", c.want, body)
			}
			// The form is shown again, so the user can correct it.
			if !strings.Contains(body, "<form") || !strings.Contains(body, `name="mode" value="lost"`) {
				t.Errorf("form not shown again:\n%s", body)
			}
			if r := fa.take(); len(r) != 0 {
				t.Errorf("invalid submission reported %+v", r)
			}
		})
	}
}

func TestFormSubmitTooLarge(t *testing.T) {
	f, fa := startForm(t)
	v := validForm()
	v.Set("description", strings.Repeat("x", 70<<10))
	code, _ := post(t, actionURL(t, f), v)
	if code != http.StatusBadRequest {
		t.Errorf("oversized form: %d, want 400", code)
	}
	if r := fa.take(); len(r) != 0 {
		t.Errorf("oversized form reported %+v", r)
	}
}

func FuzzFormSubmit(f *testing.F) {
	f.Add(validForm().Encode())
	ongoing := validForm()
	ongoing.Set("over", "no")
	f.Add(ongoing.Encode())
	f.Add("")
	f.Add("kind=stolen&started=2025-03-01T10:30")
	f.Add("kind=compromise&started=2025-03-01T10:30:00Z&over=yes&ended=2025-03-01T10:29:00Z")
	f.Add("kind=total_loss&started=2025-03-01T10:30&lock_state=%ZZ")
	f.Add("%%%&&&===;;")
	f.Add("started=0001-01-01T00:00:00Z&kind=total_loss")
	f.Add("\x00\xff\xfe")

	fa := &fakeAgent{}
	form, err := NewForm(fa)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { form.ln.Close() })
	host := form.ln.Addr().String()
	target := "http://" + host + "/" + form.secret + "/report"

	f.Fuzz(func(t *testing.T, body string) {
		fa.take()
		req := httptest.NewRequest(http.MethodPost, target, strings.NewReader(body))
		req.Host = host
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		form.ServeHTTP(w, req)

		got := fa.take()
		switch w.Code {
		case http.StatusOK:
			if len(got) != 1 {
				t.Errorf("200 with %d reports", len(got))
			}
		case http.StatusBadRequest:
			if len(got) != 0 {
				t.Errorf("400 but reported %+v", got)
			}
		default:
			t.Fatalf("status %d, want 200 or 400\n%s", w.Code, w.Body)
		}
		for _, r := range got {
			if err := r.Check(); err != nil {
				t.Errorf("form reported an invalid report %+v: %v", r, err)
			}
		}
	})
}

// TestBluetoothForm: the form lists the device's peers and files a
// request for the chosen one; an incomplete request is refused and
// nothing is filed.
func TestBluetoothForm(t *testing.T) {
	f, fa := startForm(t)
	resp, err := http.Get(f.URL(ModeBluetooth))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "11:22:33:44:55:66") || !strings.Contains(string(body), "Radio Headset") {
		t.Fatalf("form %d:\n%s", resp.StatusCode, body)
	}
	action := strings.TrimSuffix(f.URL(ModeBluetooth), "")
	resp, err = http.PostForm(action, url.Values{"address": {"11:22:33:44:55:66"}, "reason": {"radio for patrol"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 || len(fa.bt) != 0 {
		t.Fatalf("no supervisor: %d, filed %d", resp.StatusCode, len(fa.bt))
	}
	resp, err = http.PostForm(action, url.Values{"address": {"11:22:33:44:55:66"}, "other": {""}, "name": {"headset"},
		"reason": {"radio for patrol"}, "supervisor": {"sgt-ortiz"}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "req-7") {
		t.Fatalf("submit %d:\n%s", resp.StatusCode, body)
	}
	fa.mu.Lock()
	defer fa.mu.Unlock()
	if len(fa.bt) != 1 || fa.bt[0].Address != "11:22:33:44:55:66" || fa.bt[0].Supervisor != "sgt-ortiz" || fa.bt[0].Name != "headset" {
		t.Fatalf("filed %+v", fa.bt)
	}
}
