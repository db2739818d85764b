package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/cordon-mdm/cordon/internal/linkcheck"
)

const module = "github.com/cordon-mdm/cordon/"

// TestSimulatorIsTheRealAgentAndNoServer: the simulator measures the
// server from outside, as deployed agents do. It links the agent's own
// packages (the run loop, backoff and session code in agent, the wire
// types in protocol, the spool that makes reports durable, enrollment)
// and no server package, so a figure cannot come from server code
// running inside the simulator.
func TestSimulatorIsTheRealAgentAndNoServer(t *testing.T) {
	deps := map[string]bool{}
	for _, p := range linkcheck.Deps(t, ".", "", "") {
		deps[p.ImportPath] = true
		if strings.HasPrefix(p.ImportPath, module+"server") || p.ImportPath == module+"enroll" || p.ImportPath == module+"pki" ||
			strings.HasPrefix(p.ImportPath, "gorm.io/") || strings.HasPrefix(p.ImportPath, "github.com/smallstep/certificates/") {
			t.Errorf("cordon-sim links %s", p.ImportPath)
		}
	}
	for _, want := range []string{"agent", "protocol", "agent/spool", "agent/enrollment", "agent/state"} {
		if !deps[module+want] {
			t.Errorf("cordon-sim does not link %s%s: it must run the real agent", module, want)
		}
	}
}

// TestSimulatorHasNoWireCodeOfItsOwn: neither the command nor its logic
// package speaks websocket or TLS itself. Every frame the simulator sends
// is written by package agent, so the simulator is not a second
// implementation of the wire format.
func TestSimulatorHasNoWireCodeOfItsOwn(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}: {{join .Imports \" \"}}", ".", module+"internal/loadsim").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for line := range strings.Lines(string(out)) {
		pkg, imports, _ := strings.Cut(strings.TrimSpace(line), ": ")
		for _, imp := range strings.Fields(imports) {
			if slices.Contains([]string{"github.com/gorilla/websocket", "crypto/tls", "net/http", module + "internal/wshandshake"}, imp) {
				t.Errorf("%s imports %s: connections are the agent package's to make", pkg, imp)
			}
		}
	}
}

// TestSimulatorCryptoIsAllInTheModule: like the agent it runs, the
// simulator does all its cryptography in Go's standard library, so a FIPS
// build of it handshakes as a FIPS agent does.
func TestSimulatorCryptoIsAllInTheModule(t *testing.T) {
	if mods := linkcheck.CryptoModules(linkcheck.Deps(t, ".", "", "")); len(mods) > 0 {
		t.Errorf("cordon-sim links cryptography outside the standard library: %v", mods)
	}
}
