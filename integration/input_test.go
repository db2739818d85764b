package integration

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.yaml.in/yaml/v3"

	"github.com/cordon-mdm/cordon/attest/attesttest"
	"github.com/cordon-mdm/cordon/internal/testenv"
	"github.com/cordon-mdm/cordon/profiles"
	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/server/accounts"
	"github.com/cordon-mdm/cordon/server/agentpkg"
	"github.com/cordon-mdm/cordon/server/api"
	"github.com/cordon-mdm/cordon/server/appleprofile"
	"github.com/cordon-mdm/cordon/server/commands"
	"github.com/cordon-mdm/cordon/server/compliance"
	"github.com/cordon-mdm/cordon/server/console"
	"github.com/cordon-mdm/cordon/server/incidents"
	"github.com/cordon-mdm/cordon/server/releases"
	"github.com/cordon-mdm/cordon/server/review"
	"github.com/cordon-mdm/cordon/server/store"
)

// badNames are names no route may accept (INTERFACE.md's name pattern).
var badNames = map[string]string{
	"traversal": "../../etc/passwd",
	"blank":     "",
	"space":     " ",
	"newline":   "default\n",
	"4 KiB":     strings.Repeat("a", 4096),
}

// A placeholder a sample body carries where a class puts its bad text:
// json.Marshal cannot write invalid UTF-8, so the raw bytes go in after.
const hole = "\x01HOLE\x01"

// sample is a valid request body for a route: sent as is it would do
// what the route exists for, so each class below is the only defect.
type sample struct {
	body   map[string]any
	text   []string                        // dotted paths of its text fields
	names  []string                        // dotted paths of its name fields
	extras map[string]func(map[string]any) // route-specific classes (ranges, times)
}

// inputFixture is what the routes' path parameters and bodies name.
type inputFixture struct {
	e                         *testenv.Env
	keys                      map[string]string
	device, incident, command string
	request                   string
	supervisor                string
	user                      string
}

func newInputFixture(t *testing.T, e *testenv.Env) *inputFixture {
	fx := &inputFixture{e: e, keys: map[string]string{}}
	for _, role := range []string{"it-admin", "laso", "auditor", "user"} {
		fx.keys[role] = e.APIKey(role)
	}
	dir := e.MustEnroll()
	cfg, err := dir.LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	fx.device = cfg.DeviceID
	addConsoleUser(t, e, "probe-user@agency.gov", "user")
	u, err := e.Server.Store.GetUserByEmail(t.Context(), "probe-user@agency.gov")
	if err != nil {
		t.Fatal(err)
	}
	fx.user = u.ID
	var inc struct{ ID string }
	if st := e.Do("POST", "/api/v1/incidents", fx.keys["laso"], map[string]any{"device_id": fx.device, "kind": "compromise",
		"started_at": time.Now().Add(-time.Minute).UTC()}, &inc); st != 201 {
		t.Fatalf("fixture incident: %d", st)
	}
	fx.incident = inc.ID
	var cmd struct{ ID string }
	if st := e.Do("POST", "/api/v1/devices/"+fx.device+"/commands", fx.keys["it-admin"], map[string]any{"kind": "lock"}, &cmd); st != 202 {
		t.Fatalf("fixture command: %d", st)
	}
	fx.command = cmd.ID
	var req struct{ ID, Requester string }
	if st := e.Do("POST", "/api/v1/bluetooth/requests", fx.keys["laso"], map[string]any{"device_id": fx.device,
		"address": "00:00:00:00:00:01", "reason": "probe", "supervisor": "nobody"}, &req); st != 201 {
		t.Fatalf("fixture request: %d", st)
	}
	fx.request, fx.supervisor = req.ID, req.Requester
	if _, err := e.Server.Releases.Add(t.Context(), releases.AddRequest{File: strings.NewReader("probe build"),
		Version: "1.0.0", OS: "linux", Arch: "amd64", Actor: "test", Source: "local"}); err != nil {
		t.Fatalf("fixture release: %v", err)
	}
	return fx
}

// path fills a route's parameters with the fixture's ids.
func (fx *inputFixture) path(pattern string) string {
	_, path, _ := strings.Cut(pattern, " ")
	switch {
	case strings.HasPrefix(path, "/api/v1/devices/"):
		path = strings.Replace(path, "{id}", fx.device, 1)
	case strings.HasPrefix(path, "/api/v1/commands/"):
		path = strings.Replace(path, "{id}", fx.command, 1)
	case strings.HasPrefix(path, "/api/v1/incidents/"):
		path = strings.Replace(path, "{id}", fx.incident, 1)
	case strings.HasPrefix(path, "/api/v1/bluetooth/requests/"):
		path = strings.Replace(path, "{id}", fx.request, 1)
	case strings.HasPrefix(path, "/api/v1/users/"):
		path = strings.Replace(path, "{id}", fx.user, 1)
	}
	path = strings.Replace(path, "/profiles/{name}", "/profiles/"+profiles.BaselineName, 1)
	path = strings.Replace(path, "/groups/{name}", "/groups/"+store.DefaultGroup, 1)
	return strings.Replace(path, "{address}", "AA:BB:CC:DD:EE:FF", 1)
}

func freshCSR(t *testing.T, tmpl *x509.CertificateRequest) string {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

// samples are the valid bodies of the routes that take one (the OpenAPI
// document says which). A body-taking route without a sample fails the
// test, so a new route cannot skip these classes.
func (fx *inputFixture) samples(t *testing.T) map[string]func() sample {
	var baseline map[string]any
	_, doc := profiles.Baseline()
	if err := yaml.Unmarshal(doc, &baseline); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	far := "9999-01-01T00:00:00Z"
	return map[string]func() sample{
		"POST /enroll": func() sample {
			return sample{body: map[string]any{"token": fx.e.Token(time.Hour, 1), "csr": freshCSR(t, &x509.CertificateRequest{}),
				"facts": map[string]any{"platform": "linux/amd64", "hostname": "probe", "os_name": "Debian"}},
				text: []string{"facts.hostname", "facts.os_name"}}
		},
		"POST /enroll/challenge": func() sample {
			ak, _ := attesttest.SoftAK()
			return sample{body: map[string]any{"token": fx.e.Token(time.Hour, 1), "ek_public": attesttest.SoftEK(), "ak_public": ak}}
		},
		"POST /api/v1/enrollment-tokens": func() sample {
			return sample{body: map[string]any{"ttl": "1h", "uses": 2, "owner": "officer@agency.gov"}, text: []string{"owner"},
				extras: map[string]func(map[string]any){
					"ttl 0s":   func(b map[string]any) { b["ttl"] = "0s" },
					"uses 0":   func(b map[string]any) { b["uses"] = 0 },
					"ttl -1h":  func(b map[string]any) { b["ttl"] = "-1h" },
					"uses -1":  func(b map[string]any) { b["uses"] = -1 },
					"ttl 9999": func(b map[string]any) { b["ttl"] = "87600000h" },
				}}
		},
		"POST /api/v1/agent-packages": func() sample {
			return sample{body: map[string]any{"os": "linux", "arch": "amd64", "format": "deb", "token_uses": 400, "ttl": "72h",
				"owner": "it@agency.gov"}, text: []string{"owner"},
				extras: map[string]func(map[string]any){
					"os plan9":          func(b map[string]any) { b["os"] = "plan9" },
					"arch 386":          func(b map[string]any) { b["arch"] = "386" },
					"format zip linux":  func(b map[string]any) { b["format"] = "zip" },
					"format ../x":       func(b map[string]any) { b["format"] = "../x" },
					"token_uses 0":      func(b map[string]any) { b["token_uses"] = 0 },
					"token_uses 100001": func(b map[string]any) { b["token_uses"] = 100001 },
					"ttl 0s":            func(b map[string]any) { b["ttl"] = "0s" },
					"ttl forever":       func(b map[string]any) { b["ttl"] = "forever" },
				}}
		},
		"POST /api/v1/apple/enrollment-profile": func() sample {
			return sample{body: map[string]any{"token": fx.e.Token(time.Hour, 1)}, text: []string{"token"}}
		},
		"POST /api/v1/devices/{id}/revoke": func() sample {
			return sample{body: map[string]any{"reason": "lost in transit"}, text: []string{"reason"}}
		},
		"POST /api/v1/devices/{id}/commands": func() sample {
			return sample{body: map[string]any{"kind": "lock", "confirm": ""}, text: []string{"confirm", "kind"}}
		},
		"POST /api/v1/incidents": func() sample {
			return sample{body: map[string]any{"device_id": fx.device, "kind": "total_loss", "lock_state": "locked",
				"started_at": now.Add(-time.Hour), "ended_at": now.Add(-time.Minute), "location": "Station 4",
				"latitude": 38.9, "longitude": -77.0, "description": "left in a patrol car"},
				text: []string{"location", "description", "device_id"},
				extras: map[string]func(map[string]any){
					"latitude 91":      func(b map[string]any) { b["latitude"] = 91 },
					"latitude -91":     func(b map[string]any) { b["latitude"] = -91 },
					"longitude 181":    func(b map[string]any) { b["longitude"] = 181 },
					"longitude -181":   func(b map[string]any) { b["longitude"] = -181 },
					"ended_at 9999":    func(b map[string]any) { b["ended_at"] = far },
					"started_at 9999":  func(b map[string]any) { b["started_at"], b["ended_at"] = far, far },
					"ended_at +1 hour": func(b map[string]any) { b["ended_at"] = now.Add(time.Hour) },
				}}
		},
		"PATCH /api/v1/incidents/{id}": func() sample {
			return sample{body: map[string]any{"disposition": "recovered intact"}, text: []string{"disposition"},
				extras: map[string]func(map[string]any){
					"ended_at 9999": func(b map[string]any) { delete(b, "disposition"); b["ended_at"] = far },
				}}
		},
		"PUT /api/v1/users/{id}/role": func() sample {
			return sample{body: map[string]any{"role": "auditor"}, text: []string{"role"},
				extras: map[string]func(map[string]any){
					"no role":      func(b map[string]any) { delete(b, "role") },
					"unknown role": func(b map[string]any) { b["role"] = "root" },
				}}
		},
		"POST /api/v1/agent-rollouts": func() sample {
			// The fixture keeps a 1.0.0 linux/amd64 build; its in-process
			// agent does not announce agent_updates, so none is sent.
			return sample{body: map[string]any{"version": "1.0.0", "os": "linux", "arch": "amd64", "percent": 10, "group": "probe"},
				text: []string{"version", "os", "arch"}, names: []string{"group"},
				extras: map[string]func(map[string]any){
					"percent 0":         func(b map[string]any) { b["percent"] = 0; delete(b, "group") },
					"percent 101":       func(b map[string]any) { b["percent"] = 101 },
					"percent -1":        func(b map[string]any) { b["percent"] = -1 },
					"os plan9":          func(b map[string]any) { b["os"] = "plan9" },
					"arch mips":         func(b map[string]any) { b["arch"] = "mips" },
					"version 1":         func(b map[string]any) { b["version"] = "1" },
					"downgrade yes":     func(b map[string]any) { b["downgrade"] = "yes" },
					"unknown release":   func(b map[string]any) { b["version"] = "9.9.9" },
					"percent as string": func(b map[string]any) { b["percent"] = "10" },
				}}
		},
		"POST /api/v1/audit/reviews": func() sample {
			// No review exists yet: a valid body is answered 404.
			return sample{body: map[string]any{"id": "00000000-0000-0000-0000-000000000000", "note": "looked at every anomaly"},
				text: []string{"id", "note"}}
		},
		"POST /api/v1/incidents/{id}/lost-mode": func() sample {
			// The fixture's device is an agent's: the valid body is answered 409.
			return sample{body: map[string]any{"action": "locate"}, text: []string{"action"},
				extras: map[string]func(map[string]any){
					"action wipe": func(b map[string]any) { b["action"] = "wipe" },
					"no action":   func(b map[string]any) { delete(b, "action") },
				}}
		},
		"PATCH /api/v1/incidents/{id}/form": func() sample {
			return sample{body: map[string]any{"suspected_cause": "left in an unlocked car", "action_plan": "re-image, retrain"},
				text: []string{"suspected_cause", "action_plan"},
				extras: map[string]func(map[string]any){
					"cji_compromised maybe":          func(b map[string]any) { b["cji_compromised"] = "maybe" },
					"reimage_before_reconnect later": func(b map[string]any) { b["reimage_before_reconnect"] = "later" },
					"copies_to_fbi_cjis_iso_at 9999": func(b map[string]any) { b["copies_to_fbi_cjis_iso_at"] = far },
					"suspected_cause 5 KiB":          func(b map[string]any) { b["suspected_cause"] = strings.Repeat("a", 5<<10) },
					"nothing to set":                 func(b map[string]any) { clear(b) },
				}}
		},
		"PUT /api/v1/devices/{id}/group": func() sample {
			return sample{body: map[string]any{"group": store.DefaultGroup}, names: []string{"group"}}
		},
		"PUT /api/v1/profiles/{name}": func() sample {
			return sample{body: baseline, text: []string{"description"}, names: []string{"name"}}
		},
		"PUT /api/v1/groups/{name}": func() sample {
			return sample{body: map[string]any{"profile": profiles.BaselineName}, names: []string{"profile"}}
		},
		"POST /api/v1/bluetooth/allowlist": func() sample {
			return sample{body: map[string]any{"address": "AA:BB:CC:DD:EE:01", "name": "Radio", "reason": "department radio",
				"scope": "agency"}, text: []string{"name", "reason", "address"},
				extras: map[string]func(map[string]any){
					"scope group:../../etc/passwd": func(b map[string]any) { b["scope"] = "group:../../etc/passwd" },
					"expires_at 1970":              func(b map[string]any) { b["expires_at"] = "1970-01-01T00:00:00Z" },
				}}
		},
		"POST /api/v1/bluetooth/requests": func() sample {
			return sample{body: map[string]any{"device_id": fx.device, "address": "AA:BB:CC:DD:EE:02", "name": "Headset",
				"reason": "dispatch headset", "supervisor": fx.supervisor}, text: []string{"name", "reason", "supervisor", "device_id"}}
		},
		"POST /api/v1/bluetooth/requests/{id}/approve": func() sample {
			return sample{body: map[string]any{"reason": "approved"}, text: []string{"reason"}}
		},
		"POST /api/v1/bluetooth/requests/{id}/deny": func() sample {
			return sample{body: map[string]any{"reason": "not approved"}, text: []string{"reason"}}
		},
	}
}

// set puts v at a dotted path of a (decoded JSON) body.
func set(body map[string]any, path string, v any) {
	keys := strings.Split(path, ".")
	m := body
	for _, k := range keys[:len(keys)-1] {
		m = m[k].(map[string]any)
	}
	m[keys[len(keys)-1]] = v
}

// clone deep-copies a JSON body.
func clone(t *testing.T, body map[string]any) map[string]any {
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	json.Unmarshal(b, &out)
	return out
}

// encode marshals body and puts raw in place of the hole.
func encode(t *testing.T, body map[string]any, raw string) []byte {
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	holeJSON, _ := json.Marshal(hole)
	return bytes.Replace(b, holeJSON[1:len(holeJSON)-1], []byte(raw), 1)
}

type badRequest struct {
	class string
	path  string // "" for the route's own
	body  []byte
}

// bodyClasses are every class of bad body for one route.
func bodyClasses(t *testing.T, method string, s sample) []badRequest {
	valid := encode(t, s.body, "")
	out := []badRequest{
		{class: "trailing garbage", body: append(slices.Clone(valid), []byte(" garbage")...)},
		{class: "stray brace", body: append(slices.Clone(valid), '}')},
		{class: "second document", body: append(append(slices.Clone(valid), '\n'), valid...)},
	}
	for _, f := range s.text {
		for class, raw := range map[string]string{"NUL": `a\u0000b`, "raw NUL": "a\x00b", "invalid UTF-8": "a\xffb",
			"lone surrogate": `a\ud800b`, "escape char": `a\u001bb`, "64 KiB": strings.Repeat("a", 64<<10)} {
			b := clone(t, s.body)
			set(b, f, hole)
			out = append(out, badRequest{class: class + " in " + f, body: encode(t, b, raw)})
		}
	}
	for _, f := range s.names {
		for class, name := range badNames {
			b := clone(t, s.body)
			set(b, f, name)
			if class == "blank" && f == "group" {
				continue // an explicit "" is the default group (README); the route's {} class covers omission
			}
			out = append(out, badRequest{class: "bad name (" + class + ") in " + f, body: encode(t, b, "")})
		}
	}
	for class, f := range s.extras {
		b := clone(t, s.body)
		f(b)
		out = append(out, badRequest{class: class, body: encode(t, b, "")})
	}
	if method == "PUT" || method == "PATCH" {
		out = append(out, badRequest{class: "{} on " + method, body: []byte(`{}`)})
	}
	return out
}

// dbSnapshot is every table but the audit trail (checked on its own),
// row by row, so an update shows as well as an insert.
func dbSnapshot(t *testing.T, e *testenv.Env) map[string][]string {
	db := e.Server.Store.DB()
	tables, err := db.Migrator().GetTables()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, tb := range tables {
		if strings.HasPrefix(tb, "audit") || tb == "sessions" || tb == "schema_migrations" || tb == "goose_db_version" {
			continue
		}
		var rows []map[string]any
		if err := db.Table(tb).Find(&rows).Error; err != nil {
			t.Fatalf("snapshot %s: %v", tb, err)
		}
		for _, r := range rows {
			// The keys' use and the devices' liveness move with every
			// call and frame; nothing a bad input may change lives there.
			for _, volatile := range []string{"last_used_at", "last_seen", "online", "last_addr"} {
				delete(r, volatile)
			}
			b, _ := json.Marshal(r)
			out[tb] = append(out[tb], string(b))
		}
		sort.Strings(out[tb])
	}
	return out
}

func auditSeq(t *testing.T, e *testenv.Env, key string) int64 {
	var out struct {
		Entries []testenv.AuditEntry `json:"entries"`
	}
	// The newest entry is the highest seq; entries come oldest first.
	after := int64(0)
	for {
		if st := e.Do("GET", fmt.Sprintf("/api/v1/audit?limit=1000&after=%d", after), key, nil, &out); st != 200 {
			t.Fatalf("audit: %d", st)
		}
		if len(out.Entries) == 0 {
			return after
		}
		after = out.Entries[len(out.Entries)-1].Seq
	}
}

func auditSince(t *testing.T, e *testenv.Env, key string, seq int64) []testenv.AuditEntry {
	var out struct {
		Entries []testenv.AuditEntry `json:"entries"`
	}
	if st := e.Do("GET", fmt.Sprintf("/api/v1/audit?limit=1000&after=%d", seq), key, nil, &out); st != 200 {
		t.Fatalf("audit: %d", st)
	}
	return out.Entries
}

// unchanged runs send and fails unless the database is as it was and
// the trail gained no success entry.
func unchanged(t *testing.T, e *testenv.Env, auditor, what string, send func() error) {
	t.Helper()
	before, seq := dbSnapshot(t, e), auditSeq(t, e, auditor)
	if err := send(); err != nil {
		t.Errorf("%s: %v", what, err)
	}
	after := dbSnapshot(t, e)
	for tb := range after {
		if !slices.Equal(before[tb], after[tb]) {
			t.Errorf("%s changed table %s (%d rows before, %d after)", what, tb, len(before[tb]), len(after[tb]))
		}
	}
	for _, a := range auditSince(t, e, auditor, seq) {
		if a.Outcome == "success" {
			t.Errorf("%s: success audit entry %+v", what, a)
		}
	}
}

// send answers nil when the route refused with a 4xx and a JSON error.
func sendHTTP(e *testenv.Env, method, path, key string, body []byte, wantJSON bool) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, e.Server.ConsoleURL()+path, rd)
	if err != nil {
		return err
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := e.Client().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode < 400 || resp.StatusCode > 499 {
		return fmt.Errorf("status %d, want 4xx: %.200s", resp.StatusCode, raw)
	}
	if !wantJSON {
		return nil
	}
	var e2 struct {
		Error *string `json:"error"`
	}
	if err := json.Unmarshal(raw, &e2); err != nil || e2.Error == nil || *e2.Error == "" {
		return fmt.Errorf("status %d without a JSON error: %.200s", resp.StatusCode, raw)
	}
	return nil
}

// apiRoutes is the registered route list, as TestRoleMatrix builds it.
func apiRoutes() []string {
	return api.New(nil, nil, nil, nil, nil, nil, api.WithMetrics(http.NotFoundHandler()),
		api.WithCommands((*commands.Service)(nil), (*store.Store)(nil)),
		api.WithIncidents((*incidents.Service)(nil), (*store.Store)(nil)),
		api.WithCompliance((*compliance.Service)(nil), (*store.Store)(nil)),
		api.WithAccounts((*accounts.Service)(nil), (*store.Store)(nil)), api.WithReviews((*review.Service)(nil)), api.WithRollouts((*releases.Service)(nil)),
		api.WithAppleEnrollment((*appleprofile.Issuer)(nil)), api.WithAgentPackages((*agentpkg.Builder)(nil))).Routes()
}

// openAPIBodies says which operations of the OpenAPI document take a
// request body ("POST /api/v1/incidents").
func openAPIBodies(t *testing.T, e *testenv.Env) map[string]bool {
	var doc struct {
		Paths map[string]map[string]struct {
			RequestBody any `json:"requestBody"`
		} `json:"paths"`
	}
	if st := e.Do("GET", "/api/v1/openapi.json", "", nil, &doc); st != 200 {
		t.Fatalf("openapi: %d", st)
	}
	out := map[string]bool{}
	for p, ops := range doc.Paths {
		for m, op := range ops {
			out[strings.ToUpper(m)+" "+p] = op.RequestBody != nil
		}
	}
	return out
}

// TestBadInputAtEveryEdge (issue 14, acceptance 3): every route of the
// registered list, every console form, /enroll and the agent channel
// get each class of bad input; each is refused with a 4xx (a JSON error
// where the edge speaks JSON, an error frame on the channel) and changes
// nothing: the database is as it was and the trail has no success entry.
func TestBadInputAtEveryEdge(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn func(testing.TB) string) {
		e := testenv.New(t, dsn(t))
		fx := newInputFixture(t, e)
		auditor := fx.keys["auditor"]
		t.Run("api", func(t *testing.T) { badAPIInput(t, e, fx, auditor) })
		t.Run("csr", func(t *testing.T) { badCSRs(t, e, auditor) })
		t.Run("console", func(t *testing.T) { badConsoleInput(t, e, fx, auditor) })
		t.Run("channel", func(t *testing.T) { badFrames(t, e, auditor) })
	})
}

func badAPIInput(t *testing.T, e *testenv.Env, fx *inputFixture, auditor string) {
	bodies := openAPIBodies(t, e)
	samples := fx.samples(t)
	routes := apiRoutes()
	sort.Strings(routes)
	for _, route := range routes {
		method, pattern, _ := strings.Cut(route, " ")
		key := ""
		if roles := roleMatrix[route]; len(roles) > 0 && roles[0] != "*" {
			key = fx.keys[roles[0]]
		}
		path := fx.path(route)
		// Path classes: every route with a parameter.
		if strings.Contains(pattern, "{") {
			seg := pattern[strings.LastIndex(pattern[:strings.Index(pattern, "}")], "{"):]
			seg = seg[:strings.Index(seg, "}")+1]
			classes := map[string]string{"NUL": "a%00b", "invalid UTF-8": "a%FFb", "newline": "a%0Ab", "4 KiB": strings.Repeat("a", 4096),
				"traversal": "..%2F..%2Fetc%2Fpasswd"}
			for class, bad := range classes {
				p := strings.Replace(pattern, seg, bad, 1)
				p = fx.path(method + " " + p)
				var body []byte
				if s, ok := samples[route]; ok {
					body = encode(t, s().body, "")
				}
				unchanged(t, e, auditor, route+": path "+class, func() error { return sendHTTP(e, method, p, key, body, true) })
			}
		}
		if !bodies[route] {
			continue
		}
		mk, ok := samples[route]
		if !ok {
			t.Errorf("%s takes a body but has no sample here: add one so every class reaches it", route)
			continue
		}
		for _, bad := range bodyClasses(t, method, mk()) {
			unchanged(t, e, auditor, route+": "+bad.class, func() error { return sendHTTP(e, method, path, key, bad.body, true) })
		}
	}
	for route := range samples {
		if !bodies[route] {
			t.Errorf("sample for %s, which takes no body in the OpenAPI document", route)
		}
	}
	// The samples themselves pass the input rules (else the classes
	// above prove nothing): sent as they are, none is refused as bad
	// input. Revocation goes last; it ends the fixture device.
	var probe []string
	for route := range samples {
		probe = append(probe, route)
	}
	sort.Slice(probe, func(i, j int) bool {
		return !strings.HasSuffix(probe[i], "/revoke") && strings.HasSuffix(probe[j], "/revoke")
	})
	for _, route := range probe {
		method, _, _ := strings.Cut(route, " ")
		key := ""
		if roles := roleMatrix[route]; len(roles) > 0 && roles[0] != "*" {
			key = fx.keys[roles[0]]
		}
		req, _ := http.NewRequest(method, e.Server.ConsoleURL()+fx.path(route), bytes.NewReader(encode(t, samples[route]().body, "")))
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := e.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 400 || resp.StatusCode >= 500 {
			t.Errorf("the valid sample of %s was refused: %d %.300s", route, resp.StatusCode, raw)
		}
	}
}

// badCSRs: a CSR that claims an identity is refused with 400 and an
// enrollment.refused entry that says an identity was claimed.
func badCSRs(t *testing.T, e *testenv.Env, auditor string) {
	other, _ := url.Parse("urn:uuid:" + "6f1c1d2e-1111-4222-8333-444455556666")
	for name, tmpl := range map[string]*x509.CertificateRequest{
		"another device's urn:uuid": {URIs: []*url.URL{other}},
		"a DNS name":                {DNSNames: []string{"localhost"}},
		"an IP":                     {IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}},
		"an email":                  {EmailAddresses: []string{"laso@agency.gov"}},
		"a subject not its own":     {Subject: pkix.Name{CommonName: "6f1c1d2e-1111-4222-8333-444455556666"}},
	} {
		body, _ := json.Marshal(map[string]any{"token": e.Token(time.Hour, 1), "csr": freshCSR(t, tmpl),
			"facts": map[string]any{"platform": "linux/amd64", "hostname": "probe"}})
		seq := auditSeq(t, e, auditor)
		unchanged(t, e, auditor, "CSR claiming "+name, func() error {
			req, _ := http.NewRequest("POST", e.Server.ConsoleURL()+protocol.EnrollPath, bytes.NewReader(body))
			resp, err := e.Client().Do(req)
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != 400 {
				return fmt.Errorf("status %d, want 400", resp.StatusCode)
			}
			return nil
		})
		var found bool
		for _, a := range auditSince(t, e, auditor, seq) {
			found = found || a.Action == "enrollment.refused" && strings.Contains(a.Details["reason"], "identity claimed")
		}
		if !found {
			t.Errorf("CSR claiming %s: no enrollment.refused entry saying an identity was claimed", name)
		}
	}
}

// consoleForms are valid forms for every POST route of the console, with
// the role that may send them; a route without one fails the test.
func consoleForms(fx *inputFixture) map[string]struct {
	role string
	form url.Values
	bad  map[string]url.Values // route-specific classes
} {
	type f = struct {
		role string
		form url.Values
		bad  map[string]url.Values
	}
	return map[string]f{
		"POST /console/banner":                               {"", url.Values{}, nil},
		"POST /console/login":                                {"", url.Values{"email": {"it@agency.gov"}, "password": {"x"}}, nil},
		"POST /console/mfa":                                  {"", url.Values{"code": {"123456"}}, nil},
		"POST /console/mfa/enroll":                           {"", url.Values{"code": {"123456"}}, nil},
		"POST /console/logout":                               {"", url.Values{}, nil},
		"POST /console/password":                             {"it-admin", url.Values{"current": {"x"}, "new": {"y"}, "repeat": {"y"}}, nil},
		"POST /console/devices/{id}/lock":                    {"it-admin", url.Values{}, nil},
		"POST /console/devices/{id}/bt-block":                {"it-admin", url.Values{"address": {"AA:BB:CC:DD:EE:03"}}, nil},
		"POST /console/devices/{id}/wipe":                    {"laso", url.Values{"code": {"123456"}, "confirm": {fx.device}}, nil},
		"POST /console/incidents/{id}":                       {"laso", url.Values{"disposition": {"recovered"}}, map[string]url.Values{"ended_at 9999": {"ended_at": {"9999-01-01T00:00"}}}},
		"POST /console/incidents/{id}/form":                  {"laso", url.Values{"suspected_cause": {"left in a car"}}, map[string]url.Values{"cji_compromised maybe": {"cji_compromised": {"maybe"}}, "copies at 9999": {"copies_to_fbi_cjis_iso_at": {"9999-01-01T00:00"}}}},
		"POST /console/bluetooth/allowlist":                  {"it-admin", url.Values{"address": {"AA:BB:CC:DD:EE:04"}, "name": {"Radio"}, "reason": {"radio"}}, map[string]url.Values{"scope group:../../etc/passwd": {"address": {"AA:BB:CC:DD:EE:04"}, "reason": {"radio"}, "scope": {"group:../../etc/passwd"}}}},
		"POST /console/bluetooth/allowlist/{address}/delete": {"it-admin", url.Values{}, nil},
		"POST /console/bluetooth/requests/{id}/approve":      {"it-admin", url.Values{"reason": {"ok"}}, nil},
		"POST /console/bluetooth/requests/{id}/deny":         {"it-admin", url.Values{"reason": {"no"}}, nil},
		"POST /console/bluetooth/requests/{id}/endorse":      {"it-admin", url.Values{}, nil},
		"POST /console/users/{id}/unlock":                    {"it-admin", url.Values{}, nil},
		"POST /console/users/{id}/disable":                   {"it-admin", url.Values{}, nil},
		"POST /console/users/{id}/enable":                    {"it-admin", url.Values{}, nil},
		"POST /console/users/{id}/role":                      {"it-admin", url.Values{"role": {"auditor"}}, nil},
		"POST /console/reviews/{id}":                         {"laso", url.Values{"note": {"looked at every anomaly"}}, nil},
		"POST /console/apikeys":                              {"it-admin", url.Values{"name": {"ci-runner"}, "role": {"auditor"}}, map[string]url.Values{"name ../../etc/passwd": {"name": {"../../etc/passwd"}, "role": {"auditor"}}, "name blank": {"name": {""}, "role": {"auditor"}}, "name 4 KiB": {"name": {strings.Repeat("a", 4096)}, "role": {"auditor"}}}},
		"POST /console/apikeys/{id}/disable":                 {"it-admin", url.Values{}, nil},
		"POST /console/tokens":                               {"it-admin", url.Values{"ttl": {"1h"}, "uses": {"1"}, "owner": {"o@agency.gov"}}, map[string]url.Values{"ttl 0s": {"ttl": {"0s"}}, "uses 0": {"uses": {"0"}}}},
		// Sent as files in a browser; these classes arrive url-encoded.
		"POST /console/apple/push-cert": {"it-admin", url.Values{"cert": {"-----BEGIN CERTIFICATE-----"}, "key": {"-----BEGIN PRIVATE KEY-----"}}, nil},
		"POST /console/tokens/agent-package": {"it-admin", url.Values{"os": {"linux"}, "arch": {"amd64"}, "format": {"deb"}, "token_uses": {"400"}, "ttl": {"72h"}},
			map[string]url.Values{"os plan9": {"os": {"plan9"}}, "token_uses 0": {"token_uses": {"0"}}, "ttl 0s": {"ttl": {"0s"}},
				"format rpm darwin": {"os": {"darwin"}, "format": {"rpm"}}}},
		"POST /console/tokens/apple-profile": {"it-admin", url.Values{"token": {"cdt_aaaaaaaaaaaaaaaa_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}},
			map[string]url.Values{"token blank": {"token": {""}}, "token 4 KiB": {"token": {strings.Repeat("a", 4096)}}}},
	}
}

func badConsoleInput(t *testing.T, e *testenv.Env, fx *inputFixture, auditor string) {
	visitors := map[string]*browserless{}
	for _, role := range []string{"it-admin", "laso"} {
		email := role + "-input@agency.gov"
		pw := addConsoleUser(t, e, email, role)
		b := newBrowserless(t, e)
		b.signIn(email, pw, time.Now)
		visitors[role] = b
	}
	anon := newBrowserless(t, e)
	forms := consoleForms(fx)
	routes := e.Server.ConsoleRoutes()
	for _, rt := range routes {
		method, pattern, _ := strings.Cut(rt.Pattern, " ")
		if method != "POST" {
			continue
		}
		f, ok := forms[rt.Pattern]
		if !ok {
			t.Errorf("console form %s has no sample here: add one so every class reaches it", rt.Pattern)
			continue
		}
		b := anon
		if f.role != "" {
			b = visitors[f.role]
			b.get("/console/") // a fresh CSRF token
		}
		path := pattern
		for _, p := range [][2]string{{"/devices/{id}", "/devices/" + fx.device}, {"/incidents/{id}", "/incidents/" + fx.incident},
			{"/requests/{id}", "/requests/" + fx.request}, {"{address}", "AA:BB:CC:DD:EE:FF"}, {"{id}", "no-such-id"}} {
			path = strings.Replace(path, p[0], p[1], 1)
		}
		classes := map[string]url.Values{}
		fields := []string{"reason"}
		for k := range f.form {
			fields = append(fields, k)
		}
		for _, k := range fields {
			for class, v := range map[string]string{"NUL": "a\x00b", "invalid UTF-8": "a\xffb", "escape char": "a\x1bb"} {
				form := url.Values{}
				for k2, v2 := range f.form {
					form[k2] = slices.Clone(v2)
				}
				form.Set(k, v)
				classes[class+" in "+k] = form
			}
		}
		for class, form := range f.bad {
			classes[class] = form
		}
		for class, form := range classes {
			unchanged(t, e, auditor, rt.Pattern+": "+class, func() error {
				st, body, _ := b.post(path, form)
				if st < 400 || st > 499 {
					return fmt.Errorf("status %d, want 4xx: %.200s", st, body)
				}
				return nil
			})
		}
	}
	for route := range forms {
		if !slices.ContainsFunc(routes, func(r console.Route) bool { return r.Pattern == route }) {
			t.Errorf("sample for %s, which is not a console route", route)
		}
	}
}

// badFrames sends the classes over real websocket frames on mTLS, as an
// enrolled agent: each gets an error frame and changes nothing.
func badFrames(t *testing.T, e *testenv.Env, auditor string) {
	dir := e.MustEnroll()
	ws, err := dial(e, agentCert(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	hello, _ := protocol.Encode(protocol.TypeHello, "h1", time.Now(), protocol.Hello{Platform: "linux/amd64", Hostname: "probe"})
	ws.WriteMessage(websocket.TextMessage, hello)
	if env := readFrame(t, ws); env.Type != protocol.TypeAck {
		t.Fatalf("hello: %+v", env)
	}
	now := time.Now().UTC()
	lat, lon := 91.0, 181.0
	far := time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	frame := func(typ, id string, body any) []byte {
		b, err := protocol.Encode(typ, id, now, body)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	posture := protocol.Posture{CollectedAt: now, OS: protocol.OSIdentity{Platform: "linux/amd64", Name: hole}}
	report := protocol.IncidentReport{Kind: "total_loss", StartedAt: now.Add(-time.Hour), Description: hole}
	btreq := protocol.BluetoothRequest{Address: "AA:BB:CC:DD:EE:05", Reason: hole, Supervisor: "apikey:nobody"}
	withHole := func(typ, id string, body any, raw string) []byte {
		b := frame(typ, id, body)
		holeJSON, _ := json.Marshal(hole)
		return bytes.Replace(b, holeJSON[1:len(holeJSON)-1], []byte(raw), 1)
	}
	valid := frame(protocol.TypePosture, "p-valid", protocol.Posture{CollectedAt: now, OS: protocol.OSIdentity{Platform: "linux/amd64"}})
	cases := map[string][]byte{
		"trailing garbage": append(slices.Clone(valid), []byte(" garbage")...),
		"stray brace":      append(slices.Clone(valid), '}'),
		"second document":  append(append(slices.Clone(valid), '\n'), valid...),
		"body trailing data": []byte(`{"v":1,"type":"posture","id":"p-bt","ts":"` + now.Format(time.RFC3339) +
			`","body":{"collected_at":"` + now.Format(time.RFC3339) + `","os":{"platform":"linux/amd64"}}}` + "{}"),
		"ended_at 9999": frame(protocol.TypeIncidentReport, "r-far", protocol.IncidentReport{Kind: "total_loss",
			StartedAt: now.Add(-time.Hour), EndedAt: &far}),
		"latitude 91":   frame(protocol.TypeIncidentReport, "r-lat", protocol.IncidentReport{Kind: "total_loss", StartedAt: now.Add(-time.Hour), Latitude: &lat}),
		"longitude 181": frame(protocol.TypeIncidentReport, "r-lon", protocol.IncidentReport{Kind: "total_loss", StartedAt: now.Add(-time.Hour), Longitude: &lon}),
	}
	// A renewal CSR that names anyone (another device, a host) is refused
	// like one at enrollment, not rewritten.
	other, _ := url.Parse("urn:uuid:6f1c1d2e-1111-4222-8333-444455556666")
	cases["renew claiming another device"] = frame(protocol.TypeRenew, "n-uri", protocol.Renew{CSR: freshCSR(t, &x509.CertificateRequest{URIs: []*url.URL{other}})})
	cases["renew claiming a DNS name"] = frame(protocol.TypeRenew, "n-dns", protocol.Renew{CSR: freshCSR(t, &x509.CertificateRequest{DNSNames: []string{"localhost"}})})
	cases["renew with another subject"] = frame(protocol.TypeRenew, "n-cn", protocol.Renew{CSR: freshCSR(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "6f1c1d2e-1111-4222-8333-444455556666"}})})
	for class, raw := range map[string]string{"NUL": `a\u0000b`, "invalid UTF-8": "a\xffb", "lone surrogate": `a\ud800b`, "escape char": `a\u001bb`} {
		cases[class+" in hello"] = withHole(protocol.TypeHello, "h-"+class, protocol.Hello{Platform: "linux/amd64", Hostname: hole}, raw)
		cases[class+" in command result"] = withHole(protocol.TypeCommandResult, "c-"+class, protocol.CommandResult{Ref: "x", Status: "done", Message: hole}, raw)
		cases[class+" in posture"] = withHole(protocol.TypePosture, "p-"+class, posture, raw)
		cases[class+" in incident report"] = withHole(protocol.TypeIncidentReport, "r-"+class, report, raw)
		cases[class+" in bluetooth request"] = withHole(protocol.TypeBluetoothRequest, "b-"+class, btreq, raw)
	}
	for class, data := range cases {
		unchanged(t, e, auditor, "frame: "+class, func() error {
			ws.WriteMessage(websocket.TextMessage, data)
			env := readFrame(t, ws)
			var pe protocol.Error
			if env.Type != protocol.TypeError || protocol.DecodeBody(env, &pe) != nil {
				return fmt.Errorf("answer %+v, want an error frame", env)
			}
			if pe.Code != protocol.CodeMalformed && pe.Code != protocol.CodeRefused {
				return fmt.Errorf("error code %q (%s), want malformed or refused", pe.Code, pe.Message)
			}
			return nil
		})
	}
}
