package integration

import (
	"regexp"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/agent"
	"github.com/cordon-mdm/cordon/internal/testenv"
	"github.com/cordon-mdm/cordon/pki"
	"github.com/cordon-mdm/cordon/server"
)

// series reads one labelled series from /metrics, its labels written as
// the exposition format does (sorted by name).
func series(t *testing.T, e *testenv.Env, key, s string) float64 {
	t.Helper()
	return metric(t, e, key, regexp.QuoteMeta(s))
}

// TestEventMetricsMove (issue 21, acceptance 1): on a real server with a
// real agent, each event moves its metric on /metrics: a report, a lock
// command, a refused handshake, an API call, and API key guesses past
// the limit.
func TestEventMetricsMove(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn func(testing.TB) string) {
		const limit = 3
		e := testenv.New(t, dsn(t), server.WithGuessLimit(limit, time.Hour))
		key := e.APIKey("it-admin") // from 127.0.0.1, which never guesses
		m := func(s string) float64 { return series(t, e, key, s) }

		// Every handshake outcome and guess limiter exists from the start.
		for _, s := range []string{`cordon_gateway_handshakes_total{outcome="refused"}`,
			`cordon_gateway_handshakes_total{outcome="admission_limited"}`,
			`cordon_rate_limited_requests_total{limiter="api_key"}`, `cordon_rate_limited_requests_total{limiter="enroll_token"}`,
			`cordon_commands_unfinished{status="delivered"}`, `cordon_commands_oldest_unfinished_age_seconds{status="delivered"}`} {
			m(s)
		}

		// A report: counted once committed, and its commit timed.
		exec := &fakeExecutor{}
		a := e.StartAgent(e.MustEnroll(), agent.WithExecutor(exec))
		testenv.Eventually(t, 15*time.Second, "a report ingested", func() bool {
			return m("cordon_reports_ingested_total") >= 1
		})
		if n := m("cordon_report_commit_duration_seconds_count"); n < 1 {
			t.Fatalf("%v report commits timed, want at least 1", n)
		}
		if n := m("cordon_gateway_handshakes_total{outcome=\"accepted\"}"); n < 1 {
			t.Fatalf("%v accepted handshakes after the agent connected", n)
		}
		if n := m("cordon_group_commit_batch_size_count"); n < 1 {
			t.Fatalf("%v group-commit batches", n)
		}

		// A lock: issued, finished done, and timed to its answer.
		waitOnline(t, e, key, a.DeviceID())
		st, c := issue(t, e, key, a.DeviceID(), map[string]string{"kind": "lock"})
		if st != 202 {
			t.Fatalf("lock: %d", st)
		}
		if n := m(`cordon_commands_issued_total{kind="lock"}`); n != 1 {
			t.Fatalf("issued locks %v, want 1", n)
		}
		waitCommand(t, e, key, c.ID, "done")
		if n := m(`cordon_commands_finished_total{kind="lock",status="done"}`); n != 1 {
			t.Fatalf("finished locks %v, want 1", n)
		}
		if n := m(`cordon_command_duration_seconds_count{kind="lock"}`); n != 1 {
			t.Fatalf("timed locks %v, want 1", n)
		}
		if n := m(`cordon_commands_unfinished{status="delivered"}`); n != 0 {
			t.Fatalf("%v commands still delivered after the answer", n)
		}

		// A certificate of another CA: refused at the handshake.
		refused := m(`cordon_gateway_handshakes_total{outcome="refused"}`)
		other, err := pki.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { other.Close() })
		if ws, err := dial(e, deviceCert(t, other, a.DeviceID(), time.Now().Add(-time.Minute), time.Now().Add(time.Hour))); err == nil {
			ws.Close()
			t.Fatal("a certificate of another CA connected")
		}
		testenv.Eventually(t, 5*time.Second, "the refused handshake counted", func() bool {
			return m(`cordon_gateway_handshakes_total{outcome="refused"}`) == refused+1
		})

		// An API call: timed under its route pattern, never its path.
		route := `cordon_http_request_duration_seconds_count{handler="api",route="GET /api/v1/devices/{id}",status_class="2xx"}`
		before := m(route) // waitOnline read the device already
		var d deviceJSON
		if st := e.Do("GET", "/api/v1/devices/"+a.DeviceID(), key, nil, &d); st != 200 {
			t.Fatalf("GET device: %d", st)
		}
		if n := m(route); n != before+1 {
			t.Fatalf("%s = %v, want %v", route, n, before+1)
		}

		// Wrong API keys from another address: past the limit, refused.
		guesser := clientFrom(e, "127.0.0.2")
		url := e.Server.ConsoleURL() + "/api/v1/incidents"
		for i := range limit + 2 {
			want := 401
			if i >= limit {
				want = 429
			}
			if got := post(t, guesser, url, "cdk_aaaaaaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", map[string]any{}); got.status != want {
				t.Fatalf("key guess %d: %+v, want %d", i+1, got, want)
			}
		}
		if n := m(`cordon_rate_limited_requests_total{limiter="api_key"}`); n != 2 {
			t.Fatalf("api_key refusals %v, want 2", n)
		}
	})
}
