package integration

import (
	"bytes"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/cordon-mdm/cordon/internal/testenv"
	"github.com/cordon-mdm/cordon/server/accounts"
	"github.com/cordon-mdm/cordon/server/agentpkg"
	"github.com/cordon-mdm/cordon/server/api"
	"github.com/cordon-mdm/cordon/server/applemdm"
	"github.com/cordon-mdm/cordon/server/appleprofile"
	"github.com/cordon-mdm/cordon/server/commands"
	"github.com/cordon-mdm/cordon/server/compliance"
	"github.com/cordon-mdm/cordon/server/console"
	"github.com/cordon-mdm/cordon/server/incidents"
	"github.com/cordon-mdm/cordon/server/releases"
	"github.com/cordon-mdm/cordon/server/review"
	"github.com/cordon-mdm/cordon/server/store"
)

// roleMatrix is the permission matrix the README's "Who may do what"
// table states: route → roles that pass the role check ("*" for anyone,
// key or not). A route missing here fails the test, so a new route
// cannot ship without a decision about who may call it.
var roleMatrix = map[string][]string{
	"GET /healthz":                                 {"*"},
	"POST /enroll":                                 {"*"},
	"POST /enroll/challenge":                       {"*"},
	"GET /ca.pem":                                  {"*"},
	"GET /crl":                                     {"*"},
	"GET /api/v1/openapi.json":                     {"*"},
	"POST /api/v1/enrollment-tokens":               {"it-admin"},
	"GET /api/v1/devices":                          {"it-admin", "laso", "auditor"},
	"GET /api/v1/devices/{id}":                     {"it-admin", "laso", "auditor"},
	"GET /api/v1/devices/{id}/lock-timeline":       {"it-admin", "laso", "auditor"},
	"GET /api/v1/devices/{id}/posture-history":     {"it-admin", "laso", "auditor"},
	"POST /api/v1/devices/{id}/revoke":             {"it-admin", "laso"},
	"POST /api/v1/devices/{id}/commands":           {"it-admin", "laso"},
	"GET /api/v1/commands/{id}":                    {"it-admin", "laso", "auditor"},
	"POST /api/v1/commands/{id}/approve":           {"laso"},
	"POST /api/v1/incidents":                       {"it-admin", "laso", "user"},
	"GET /api/v1/incidents":                        {"it-admin", "laso", "auditor"},
	"GET /api/v1/incidents/{id}":                   {"it-admin", "laso", "auditor"},
	"PATCH /api/v1/incidents/{id}":                 {"laso"},
	"GET /api/v1/incidents/{id}/form":              {"it-admin", "laso", "auditor"},
	"PATCH /api/v1/incidents/{id}/form":            {"laso"},
	"POST /api/v1/incidents/{id}/lost-mode":        {"laso"},
	"GET /api/v1/devices/{id}/access":              {"it-admin", "laso", "auditor"},
	"GET /api/v1/devices/{id}/findings":            {"it-admin", "laso", "auditor"},
	"PUT /api/v1/devices/{id}/group":               {"it-admin"},
	"GET /api/v1/compliance":                       {"it-admin", "laso", "auditor"},
	"GET /api/v1/profiles":                         {"it-admin", "laso", "auditor"},
	"GET /api/v1/profiles/schema":                  {"it-admin", "laso", "auditor"},
	"GET /api/v1/profiles/{name}":                  {"it-admin", "laso", "auditor"},
	"GET /api/v1/profiles/{name}/mobileconfig":     {"it-admin", "laso", "auditor"},
	"PUT /api/v1/profiles/{name}":                  {"it-admin"},
	"GET /api/v1/groups":                           {"it-admin", "laso", "auditor"},
	"PUT /api/v1/groups/{name}":                    {"it-admin"},
	"GET /api/v1/bluetooth/allowlist":              {"it-admin", "laso", "auditor"},
	"POST /api/v1/bluetooth/allowlist":             {"it-admin"},
	"DELETE /api/v1/bluetooth/allowlist/{address}": {"it-admin"},
	"POST /api/v1/bluetooth/requests":              {"it-admin", "laso", "user"},
	"GET /api/v1/bluetooth/requests":               {"it-admin", "laso", "auditor"},
	"POST /api/v1/bluetooth/requests/{id}/endorse": {"it-admin", "laso", "auditor", "user"},
	"POST /api/v1/bluetooth/requests/{id}/approve": {"it-admin"},
	"POST /api/v1/bluetooth/requests/{id}/deny":    {"it-admin"},
	"GET /api/v1/audit":                            {"auditor", "laso"},
	"GET /api/v1/audit/verify":                     {"auditor", "laso"},
	"GET /api/v1/audit/checkpoints":                {"auditor", "laso"},
	"GET /api/v1/audit/reviews":                    {"auditor", "laso"},
	"POST /api/v1/audit/reviews":                   {"laso"},
	"POST /api/v1/agent-rollouts":                  {"it-admin", "laso"},
	"GET /api/v1/agent-rollouts":                   {"it-admin", "laso", "auditor"},
	"GET /metrics":                                 {"it-admin", "laso", "auditor"},
	"GET /api/v1/users":                            {"it-admin"},
	"POST /api/v1/users/{id}/disable":              {"it-admin"},
	"POST /api/v1/users/{id}/enable":               {"it-admin"},
	"PUT /api/v1/users/{id}/role":                  {"it-admin"},
	"POST /api/v1/apple/enrollment-profile":        {"it-admin"},
	"POST /api/v1/agent-packages":                  {"it-admin"},
	"POST /api/v1/devices/{id}/refresh":            {"it-admin", "laso"},
}

// TestRoleMatrix walks every registered route with every role's key and
// with none: a role the matrix allows passes the role check, any other
// gets 403, and no key gets 401 wherever a key is needed.
func TestRoleMatrix(t *testing.T) {
	e := testenv.New(t, "")
	keys := map[string]string{}
	for _, role := range []string{"it-admin", "laso", "auditor", "user"} {
		keys[role] = e.APIKey(role)
	}
	routes := api.New(nil, nil, nil, nil, nil, nil, api.WithMetrics(http.NotFoundHandler()),
		api.WithCommands((*commands.Service)(nil), (*store.Store)(nil)),
		api.WithIncidents((*incidents.Service)(nil), (*store.Store)(nil)),
		api.WithCompliance((*compliance.Service)(nil), (*store.Store)(nil)),
		api.WithAccounts((*accounts.Service)(nil), (*store.Store)(nil)), api.WithReviews((*review.Service)(nil)), api.WithRollouts((*releases.Service)(nil)),
		api.WithAppleEnrollment((*appleprofile.Issuer)(nil)), api.WithAppleRefresh((*applemdm.MDM)(nil)),
		api.WithAgentPackages((*agentpkg.Builder)(nil))).Routes()
	sort.Strings(routes)
	seen := map[string]bool{}
	for _, r := range routes {
		seen[r] = true
		allowed, ok := roleMatrix[r]
		if !ok {
			t.Errorf("route %s is not in the role matrix", r)
			continue
		}
		method, path, _ := strings.Cut(r, " ")
		for _, p := range []string{"{id}", "{name}", "{address}"} {
			path = strings.ReplaceAll(path, p, "no-such-thing")
		}
		call := func(key string) int {
			req, _ := http.NewRequest(method, e.Server.ConsoleURL()+path, bytes.NewReader([]byte("{}")))
			if key != "" {
				req.Header.Set("Authorization", "Bearer "+key)
			}
			resp, err := e.Client().Do(req)
			if err != nil {
				t.Fatalf("%s: %v", r, err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return resp.StatusCode
		}
		open := allowed[0] == "*"
		if st := call(""); !open && st != http.StatusUnauthorized {
			t.Errorf("%s without a key: %d, want 401", r, st)
		}
		for role, key := range keys {
			st := call(key)
			may := open
			for _, a := range allowed {
				may = may || a == role
			}
			switch {
			case may && (st == http.StatusForbidden || st == http.StatusUnauthorized):
				t.Errorf("%s as %s: %d, but the matrix allows it", r, role, st)
			case !may && st != http.StatusForbidden:
				t.Errorf("%s as %s: %d, want 403", r, role, st)
			}
		}
	}
	for r := range roleMatrix {
		if !seen[r] {
			t.Errorf("the role matrix names %s, which is not a route", r)
		}
	}
}

// consoleMatrix is the console's half of the README's "Who may do what":
// page or action → roles. "*" is anyone (the sign-in pages), "*signed-in"
// anyone part-way through sign-in (second factor, sign out).
var consoleMatrix = map[string][]string{
	"GET /console/static/":                               {"*"},
	"GET /console/banner":                                {"*"},
	"POST /console/banner":                               {"*"},
	"GET /console/login":                                 {"*"},
	"POST /console/login":                                {"*"},
	"GET /console/mfa":                                   {"*signed-in"},
	"POST /console/mfa":                                  {"*signed-in"},
	"GET /console/mfa/enroll":                            {"*signed-in"},
	"GET /console/mfa/qr.png":                            {"*signed-in"},
	"POST /console/mfa/enroll":                           {"*signed-in"},
	"POST /console/logout":                               {"*signed-in"},
	"GET /console/{$}":                                   {"it-admin", "laso", "auditor", "user"},
	"GET /console/password":                              {"it-admin", "laso", "auditor", "user"},
	"POST /console/password":                             {"it-admin", "laso", "auditor", "user"},
	"GET /console/devices":                               {"it-admin", "laso", "auditor"},
	"GET /console/devices/{id}":                          {"it-admin", "laso", "auditor"},
	"POST /console/devices/{id}/lock":                    {"it-admin", "laso"},
	"POST /console/devices/{id}/bt-block":                {"it-admin", "laso"},
	"POST /console/devices/{id}/wipe":                    {"laso"},
	"GET /console/incidents":                             {"it-admin", "laso", "auditor"},
	"GET /console/incidents/{id}":                        {"it-admin", "laso", "auditor"},
	"POST /console/incidents/{id}":                       {"laso"},
	"GET /console/incidents/{id}/form":                   {"it-admin", "laso", "auditor"},
	"POST /console/incidents/{id}/form":                  {"laso"},
	"GET /console/bluetooth":                             {"it-admin", "laso", "auditor"},
	"POST /console/bluetooth/allowlist":                  {"it-admin"},
	"POST /console/bluetooth/allowlist/{address}/delete": {"it-admin"},
	"POST /console/bluetooth/requests/{id}/approve":      {"it-admin"},
	"POST /console/bluetooth/requests/{id}/deny":         {"it-admin"},
	"POST /console/bluetooth/requests/{id}/endorse":      {"it-admin", "laso", "auditor", "user"},
	"GET /console/audit":                                 {"auditor", "laso"},
	"GET /console/reviews":                               {"auditor", "laso"},
	"POST /console/reviews/{id}":                         {"laso"},
	"GET /console/users":                                 {"it-admin"},
	"POST /console/users/{id}/unlock":                    {"it-admin"},
	"POST /console/users/{id}/disable":                   {"it-admin"},
	"POST /console/users/{id}/enable":                    {"it-admin"},
	"POST /console/users/{id}/role":                      {"it-admin"},
	"POST /console/apikeys":                              {"it-admin"},
	"POST /console/apikeys/{id}/disable":                 {"it-admin"},
	"GET /console/tokens":                                {"it-admin"},
	"POST /console/tokens":                               {"it-admin"},
	"GET /console/apple/push-cert":                       {"it-admin"},
	"POST /console/apple/push-cert":                      {"it-admin"},
	"POST /console/tokens/apple-profile":                 {"it-admin"},
	"POST /console/tokens/agent-package":                 {"it-admin"},
}

// TestConsoleRoleMatrix walks every console route with a signed-in
// session of every role, and with none: without a session a page sends
// the browser to the banner; a role the matrix allows is served, any
// other gets 403.
func TestConsoleRoleMatrix(t *testing.T) {
	clock := &skewClock{}
	e := testenv.New(t, "", clock.option())
	visitors := map[string]*browserless{}
	for _, role := range []string{"it-admin", "laso", "auditor", "user"} {
		email := role + "@agency.example"
		pw := addConsoleUser(t, e, email, role)
		visitors[role] = newBrowserless(t, e)
		visitors[role].signIn(email, pw, clock.now)
	}
	seen := map[string]bool{}
	for _, rt := range console.New(nil, nil, nil, nil, nil, nil, nil, console.WithLifecycle((*accounts.Service)(nil)),
		console.WithPushCerts((*applemdm.MDM)(nil)), console.WithAppleProfiles((*appleprofile.Issuer)(nil)),
		console.WithAgentPackages((*agentpkg.Builder)(nil))).Routes() {
		seen[rt.Pattern] = true
		allowed, ok := consoleMatrix[rt.Pattern]
		if !ok {
			t.Errorf("console route %s is not in the role matrix", rt.Pattern)
			continue
		}
		var listed []string
		if rt.Roles != nil {
			listed = rt.Roles
		} else {
			listed = []string{"*"}
		}
		if strings.Join(listed, ",") != strings.Join(allowed, ",") {
			t.Errorf("%s admits %v, the matrix says %v", rt.Pattern, listed, allowed)
		}
		if allowed[0] == "*" {
			continue // the sign-in pages themselves
		}
		method, path, _ := strings.Cut(rt.Pattern, " ")
		path = strings.NewReplacer("{id}", "no-such-thing", "{address}", "AA:BB:CC:DD:EE:FF", "{$}", "").Replace(path)
		call := func(b *browserless) (int, string) {
			if method == "GET" {
				st, _, loc := b.get(path)
				return st, loc
			}
			st, _, loc := b.post(path, nil)
			return st, loc
		}
		if st, loc := call(newBrowserless(t, e)); st != http.StatusSeeOther || !strings.HasPrefix(loc, "/console/banner") {
			t.Errorf("%s without a session: %d %q, want a redirect to the banner", rt.Pattern, st, loc)
		}
		if allowed[0] == "*signed-in" {
			continue // reached part-way through sign-in; checked in the sign-in tests
		}
		for role, b := range visitors {
			st, loc := call(b)
			may := false
			for _, a := range allowed {
				may = may || a == role
			}
			switch {
			case may && (st == http.StatusForbidden || strings.HasPrefix(loc, "/console/banner")):
				t.Errorf("%s as %s: %d %q, but the matrix allows it", rt.Pattern, role, st, loc)
			case !may && st != http.StatusForbidden:
				t.Errorf("%s as %s: %d, want 403", rt.Pattern, role, st)
			}
		}
	}
	for r := range consoleMatrix {
		if !seen[r] {
			t.Errorf("the console matrix names %s, which is not a route", r)
		}
	}
}
