package tray

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

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
