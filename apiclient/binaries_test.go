package apiclient

import (
	"strings"
	"testing"

	"github.com/cordon-mdm/cordon/internal/linkcheck"
)

// TestBinariesDoNotLinkTheClient: the client is for integrators and
// tests. The server and the agent talk to each other over protocol, not
// over this package, and the generated code and its runtime would only
// add to what they link (and to what the FIPS review must account for).
func TestBinariesDoNotLinkTheClient(t *testing.T) {
	for _, bin := range []string{"cordon-server", "cordon-agent"} {
		for _, p := range linkcheck.Deps(t, "../cmd/"+bin, "", "") {
			if strings.HasPrefix(p.ImportPath, "github.com/cordon-mdm/cordon/apiclient") || p.Module == "github.com/oapi-codegen/runtime" {
				t.Errorf("%s links %s", bin, p.ImportPath)
			}
		}
	}
}
