package api

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/cordon-mdm/cordon/server/accounts"
	"github.com/cordon-mdm/cordon/server/agentpkg"
	"github.com/cordon-mdm/cordon/server/appleprofile"
	"github.com/cordon-mdm/cordon/server/commands"
	"github.com/cordon-mdm/cordon/server/compliance"
	"github.com/cordon-mdm/cordon/server/incidents"
	"github.com/cordon-mdm/cordon/server/releases"
	"github.com/cordon-mdm/cordon/server/review"
	"github.com/cordon-mdm/cordon/server/store"
)

// refreshNothing registers the Apple refresh route.
type refreshNothing struct{}

func (refreshNothing) Refresh(context.Context, string) error { return nil }

// TestOpenAPIDescribesEveryRoute: every route the API registers is in the
// OpenAPI document with its method, and every operation the document
// describes is registered.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	// Typed nils: the routes are registered, nothing is called.
	a := New(nil, nil, nil, nil, nil, nil, WithMetrics(http.NotFoundHandler()),
		WithCommands((*commands.Service)(nil), (*store.Store)(nil)),
		WithIncidents((*incidents.Service)(nil), (*store.Store)(nil)),
		WithCompliance((*compliance.Service)(nil), (*store.Store)(nil)),
		WithAccounts((*accounts.Service)(nil), (*store.Store)(nil)), WithReviews((*review.Service)(nil)), WithRollouts((*releases.Service)(nil)),
		WithAppleEnrollment((*appleprofile.Issuer)(nil)), WithAppleRefresh(refreshNothing{}),
		WithAgentPackages((*agentpkg.Builder)(nil)))
	registered := map[string]bool{}
	for _, r := range a.Routes() {
		method, path, ok := strings.Cut(r, " ")
		if !ok {
			t.Errorf("route %q has no method: every route must name one", r)
			continue
		}
		registered[strings.ToLower(method)+" "+path] = true
	}
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openapiJSON, &doc); err != nil {
		t.Fatal(err)
	}
	described := map[string]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			if method == "parameters" {
				continue
			}
			described[method+" "+path] = true
		}
	}
	var missing, stale []string
	for r := range registered {
		if !described[r] {
			missing = append(missing, r)
		}
	}
	for d := range described {
		if !registered[d] {
			stale = append(stale, d)
		}
	}
	sort.Strings(missing)
	sort.Strings(stale)
	for _, m := range missing {
		t.Errorf("registered but not in openapi.json: %s", m)
	}
	for _, s := range stale {
		t.Errorf("in openapi.json but not registered: %s", s)
	}
}
