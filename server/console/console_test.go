package console

import (
	"context"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/cordon-mdm/cordon/server/audit"
)

// The CSP forbids script and inline style; a template that used either
// would break in the browser, so none may.
func TestTemplatesCarryNoScriptOrInlineStyle(t *testing.T) {
	forbidden := regexp.MustCompile(`(?i)<script|\sstyle=|\son[a-z]+=|javascript:|<style`)
	names, _ := fs.Glob(templateFS, "templates/*.html")
	if len(names) < 10 {
		t.Fatalf("only %d templates found", len(names))
	}
	for _, n := range names {
		b, _ := templateFS.ReadFile(n)
		if m := forbidden.Find(b); m != nil {
			t.Errorf("%s contains %q", n, m)
		}
	}
}

func TestEveryResponseCarriesTheSecurityHeaders(t *testing.T) {
	trail := &trail{}
	c := New(nil, nil, trail, nil, nil, nil, nil, WithBanner("Agency text: monitored, recorded, audited."))
	rec := httptest.NewRecorder()
	c.ServeHTTP(rec, httptest.NewRequest("GET", "https://cordon.example/console/banner", nil))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "Agency text: monitored") {
		t.Fatalf("banner: %d %s", rec.Code, rec.Body)
	}
	h := rec.Result().Header
	for k, want := range map[string]string{
		"Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
		"X-Frame-Options":         "DENY",
		"Cache-Control":           "no-store",
		"X-Content-Type-Options":  "nosniff",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	var pre *http.Cookie
	for _, ck := range rec.Result().Cookies() {
		if ck.Name == preCookie {
			pre = ck
		}
	}
	if pre == nil || !pre.Secure || !pre.HttpOnly || pre.SameSite != http.SameSiteStrictMode || pre.Path != "/" || pre.Domain != "" {
		t.Fatalf("pre-sign-in cookie: %+v", pre)
	}
	// A POST without the token is refused and audited before anything
	// else is touched (the other services here are nil).
	rec = httptest.NewRecorder()
	req := httptest.NewRequest("POST", "https://cordon.example/console/login", strings.NewReader("email=a&password=b"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	c.ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden {
		t.Fatalf("token-less login POST: %d", rec.Code)
	}
	if len(trail.entries) != 1 || trail.entries[0].Action != ActionDenied || trail.entries[0].Outcome != audit.Denied {
		t.Fatalf("refusal audit: %+v", trail.entries)
	}
}

// trail keeps what the console records.
type trail struct{ entries []audit.Entry }

func (t *trail) RecordTx(ctx context.Context, _ audit.Appender, e audit.Entry) error {
	return t.Record(ctx, e)
}

func (t *trail) Record(_ context.Context, e audit.Entry) error {
	t.entries = append(t.entries, e)
	return nil
}

func (t *trail) Verify(context.Context) (audit.VerifyResult, error) {
	return audit.VerifyResult{OK: true}, nil
}
