// Package layering holds the test that keeps Cordon's dependencies
// pointing one way: the core server packages (the services and the
// audit trail) and the wire types link neither the CA, nor gorm directly,
// nor the console, whatever a later change finds convenient.
package layering

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/cordon-mdm/cordon/"

// core are the packages held to the rules. A new service that belongs
// below the edges goes here.
var core = []string{
	"server/audit",
	"server/incidents",
	"server/commands",
	"server/compliance",
	"server/accounts",
	"server/agentpkg",
	"protocol",
}

// banned are what no core package may link, directly or not, and why:
// a path ending in "/" bans everything under it, any other path that
// package and the ones under it.
var banned = []struct{ path, why string }{
	{"github.com/smallstep/", "the CA's authority (and its badger, grpc, ...) belongs to pki alone"},
	{module + "server/console", "an edge; the services sit below it"},
	{module + "server/api", "an edge; the services sit below it"},
}

// bannedExactly are packages banned without the ones under them.
var bannedExactly = []struct{ path, why string }{
	{module + "pki", "the CA; the leaf pki/identity is allowed"},
}

func bans(path, dep string) bool {
	if strings.HasSuffix(path, "/") {
		return strings.HasPrefix(dep, path)
	}
	return dep == path || strings.HasPrefix(dep, path+"/")
}

// auditMayUse is everything of Cordon that server/audit may link: every
// service imports audit, so audit imports none of them (it owns its own
// action names; each service declares the ones it writes).
var auditMayUse = []string{"server/store", "internal/"}

// protocolMayUse is everything outside the standard library that the
// wire types may link (Tailscale's tailcfg rule).
var protocolMayUse = []string{module + "internal/input"}

type pkg struct {
	ImportPath string
	Standard   bool
	Imports    []string
	Deps       []string
}

// list runs `go list -deps -json` once over the core packages.
func list(t *testing.T) map[string]*pkg {
	t.Helper()
	args := []string{"list", "-deps", "-json=ImportPath,Standard,Imports,Deps"}
	for _, p := range core {
		args = append(args, module+p)
	}
	cmd := exec.Command("go", args...)
	cmd.Env = append(cmd.Environ(), "CGO_ENABLED=0")
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	all := map[string]*pkg{}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		all[p.ImportPath] = &p
	}
	return all
}

func hasPrefix(s string, prefixes ...string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// TestCoreLinksOneWay: no core package links smallstep, the CA or an
// edge; none imports gorm itself (the store, which it may use, is where
// gorm lives).
func TestCoreLinksOneWay(t *testing.T) {
	all := list(t)
	for _, name := range core {
		p := all[module+name]
		if p == nil {
			t.Fatalf("go list did not list %s", name)
		}
		for _, b := range banned {
			// One line per rule: smallstep alone is some 50 packages.
			var hits []string
			for _, d := range p.Deps {
				if bans(b.path, d) {
					hits = append(hits, d)
				}
			}
			if len(hits) > 0 {
				t.Errorf("%s links %d package(s) of %s (%s, ...): %s", name, len(hits), b.path, hits[0], b.why)
			}
		}
		for _, d := range p.Deps {
			for _, b := range bannedExactly {
				if d == b.path {
					t.Errorf("%s links %s: %s", name, d, b.why)
				}
			}
		}
		for _, imp := range p.Imports {
			if strings.HasPrefix(imp, "gorm.io/") {
				t.Errorf("%s imports %s: the database is server/store's, reached through its interfaces", name, imp)
			}
		}
	}
}

// TestAuditImportsNoService: audit is below every service.
func TestAuditImportsNoService(t *testing.T) {
	p := list(t)[module+"server/audit"]
	for _, d := range p.Deps {
		if rest, ok := strings.CutPrefix(d, module); ok && !hasPrefix(rest, auditMayUse...) {
			t.Errorf("server/audit links %s: audit may use only %v of Cordon", d, auditMayUse)
		}
	}
}

// TestProtocolLinksOnlyTheStandardLibrary: the wire types, which the
// agent and the server share, link the standard library and the input
// rules, nothing else.
func TestProtocolLinksOnlyTheStandardLibrary(t *testing.T) {
	all := list(t)
	for _, d := range all[module+"protocol"].Deps {
		if q := all[d]; q != nil && !q.Standard && !hasPrefix(d, protocolMayUse...) {
			t.Errorf("protocol links %s: only the standard library and %v are allowed", d, protocolMayUse)
		}
	}
}
