package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// builds caches binaries per GOFIPS140 value for the whole test run: a
// build takes seconds, and the kill -9 and FIPS tests need real processes.
var builds = struct {
	sync.Mutex
	dir  string
	bins map[string]string
}{bins: map[string]string{}}

// buildServer builds cmd/cordon-server. gofips140 is the GOFIPS140 build
// setting ("v1.0.0", "off"); empty inherits the test's own environment,
// so under `make test-fips` the binary is a FIPS build too.
func buildServer(t *testing.T, gofips140 string) string {
	return buildBinary(t, "cordon-server", gofips140)
}

// buildBinary builds cmd/NAME once per test binary.
func buildBinary(t *testing.T, name, gofips140 string) string {
	t.Helper()
	builds.Lock()
	defer builds.Unlock()
	key := name + "/" + gofips140
	if bin, ok := builds.bins[key]; ok {
		return bin
	}
	if builds.dir == "" {
		dir, err := os.MkdirTemp("", "cordon-bin")
		if err != nil {
			t.Fatal(err)
		}
		builds.dir = dir
	}
	bin := filepath.Join(builds.dir, name)
	if gofips140 != "" {
		bin += "-fips-" + gofips140
	}
	cmd := exec.Command("go", "build", "-o", bin, "github.com/cordon-mdm/cordon/cmd/"+name)
	cmd.Env = os.Environ()
	if gofips140 != "" {
		cmd.Env = append(cmd.Env, "GOFIPS140="+gofips140)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s (GOFIPS140=%q): %v\n%s", name, gofips140, err, out)
	}
	builds.bins[key] = bin
	return bin
}
