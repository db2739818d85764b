package integration

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/internal/testenv"
	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/server"
)

// clientFrom is an HTTPS client of e whose connections leave from the
// loopback address src, so the server sees another source.
func clientFrom(e *testenv.Env, src string) *http.Client {
	c := e.Client()
	tr := e.BaseTransport()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		return d.DialContext(ctx, network, addr)
	}
	c.Transport = e.Validating(tr)
	return c
}

type answer struct {
	status     int
	retryAfter string
	err        string
}

func post(t *testing.T, c *http.Client, url, bearer string, body any) answer {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", url, bytes.NewReader(b))
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e struct{ Error string }
	json.NewDecoder(resp.Body).Decode(&e)
	return answer{resp.StatusCode, resp.Header.Get("Retry-After"), e.Error}
}

// TestGuessingIsLimited (issue 14, acceptance 5): guessing enrollment
// tokens (and API keys) from one address gets 429 with Retry-After past
// the limit, and the trail gets one entry per source and window saying
// how many guesses were refused. Another address, and a valid token, still
// work meanwhile; the limited address works again after its window.
func TestGuessingIsLimited(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn func(testing.TB) string) {
		const limit, window = 5, 3 * time.Second
		// The limiter's clock stands still until the test moves it past the
		// window, so the counts hold on a slow machine too.
		clk := &fakeClock{t: time.Now()}
		e := testenv.New(t, dsn(t), server.WithGuessLimit(limit, window), server.WithGuessClock(clk.Now),
			server.WithSweepInterval(100*time.Millisecond))
		auditor := e.APIKey("auditor") // made before any address is limited
		a, b := clientFrom(e, "127.0.0.1"), clientFrom(e, "127.0.0.2")
		enroll := e.Server.ConsoleURL() + protocol.EnrollPath
		guess := func(token string) map[string]any {
			return map[string]any{"token": token, "csr": freshCSR(t, &x509.CertificateRequest{}),
				"facts": map[string]any{"platform": "linux/amd64", "hostname": "probe"}}
		}
		wrong := "cdt_aaaaaaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
		for i := range limit {
			if got := post(t, a, enroll, "", guess(wrong)); got.status != 403 {
				t.Fatalf("guess %d: %+v, want 403 under the limit", i+1, got)
			}
		}
		valid := e.Token(time.Hour, 1)
		const refused = 7
		for i := range refused {
			tok := wrong
			if i == 0 {
				tok = valid // a limited source is refused before its token is read
			}
			got := post(t, a, enroll, "", guess(tok))
			n, err := strconv.Atoi(got.retryAfter)
			if got.status != 429 || err != nil || n < 1 || n > int(window/time.Second) {
				t.Fatalf("guess %d over the limit: %+v, want 429 with Retry-After 1..%d", limit+i+1, got, int(window/time.Second))
			}
		}
		// Another address is not limited, and its valid token enrolls.
		if got := post(t, b, enroll, "", guess(wrong)); got.status != 403 {
			t.Fatalf("another address: %+v, want 403", got)
		}
		if got := post(t, b, enroll, "", guess(valid)); got.status != 201 {
			t.Fatalf("a valid token from another address: %+v, want 201", got)
		}
		// API keys: the same rule, counted apart from tokens.
		devices := e.Server.ConsoleURL() + "/api/v1/incidents"
		for i := range limit {
			if got := post(t, a, devices, "cdk_aaaaaaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", map[string]any{}); got.status != 401 {
				t.Fatalf("key guess %d: %+v, want 401", i+1, got)
			}
		}
		if got := post(t, a, devices, "cdk_aaaaaaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", map[string]any{}); got.status != 429 || got.retryAfter == "" {
			t.Fatalf("key guess over the limit: %+v, want 429 with Retry-After", got)
		}
		if got := post(t, b, devices, e.APIKey("laso"), map[string]any{}); got.status != 400 {
			t.Fatalf("a valid key from another address: %+v, want 400 (the empty report), not 429", got)
		}
		clk.Set(clk.Now().Add(window)) // the window ends

		// After the window: one entry per source and kind of secret, with
		// the count; and the address is served again.
		// Read from the other address: 127.0.0.1 is refused until its
		// window ends, whatever key it shows.
		trail := func() []testenv.AuditEntry {
			req, _ := http.NewRequest("GET", e.Server.ConsoleURL()+"/api/v1/audit?limit=1000&action=auth.guesses_refused", nil)
			req.Header.Set("Authorization", "Bearer "+auditor)
			resp, err := b.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var out struct{ Entries []testenv.AuditEntry }
			if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&out) != nil {
				t.Fatalf("audit from another address: %d", resp.StatusCode)
			}
			return out.Entries
		}
		var entries []testenv.AuditEntry
		testenv.Eventually(t, 3*window, "auth.guesses_refused entries", func() bool {
			entries = nil
			for _, x := range trail() {
				if x.Action == "auth.guesses_refused" {
					entries = append(entries, x)
				}
			}
			return len(entries) >= 2
		})
		time.Sleep(300 * time.Millisecond) // a second entry for the same window would show now
		entries = entries[:0]
		for _, x := range trail() {
			if x.Action == "auth.guesses_refused" {
				entries = append(entries, x)
			}
		}
		byTarget := map[string]testenv.AuditEntry{}
		for _, x := range entries {
			if _, dup := byTarget[x.Target]; dup {
				t.Errorf("two entries for %s in one window: %+v", x.Target, entries)
			}
			byTarget[x.Target] = x
		}
		if x := byTarget["enroll"]; x.Source != "127.0.0.1" || x.Details["refused"] != strconv.Itoa(refused) || x.Outcome != "denied" {
			t.Errorf("enroll entry %+v, want source 127.0.0.1 and %d refused", x, refused)
		}
		if x := byTarget["api"]; x.Source != "127.0.0.1" || x.Details["refused"] != "1" {
			t.Errorf("api entry %+v, want source 127.0.0.1 and 1 refused", x)
		}
		if n := len(e.Audit("enrollment.refused")); n != limit+1 {
			t.Errorf("%d enrollment.refused entries, want %d: refusals past the limit are counted, not each audited", n, limit+1)
		}
		if got := post(t, a, enroll, "", guess(e.Token(time.Hour, 1))); got.status != 201 {
			t.Fatalf("the first address after its window: %+v, want 201", got)
		}
	})
}
