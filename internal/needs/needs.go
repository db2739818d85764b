// Package needs is the one "skip, or fail under CI" check for tests that
// need a component from outside Go (a Debian package, root): a developer's
// plain `go test` skips what is missing, while CI=true (which `make test`
// sets up for) turns a missing component into a failure, so a green CI run
// never hides a skipped test.
package needs

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// CI reports whether this is a CI run (CI=true), where nothing a test
// needs may be missing.
func CI() bool { return os.Getenv("CI") == "true" }

// Missing skips t, or fails it when CI=true, with why as the message.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	why := fmt.Sprintf(format, args...)
	if CI() {
		t.Fatalf("%s; CI=true requires it", why)
	}
	t.Skipf("%s; run `make test` to install it", why)
}

// Tool returns the path of the program name, from the Debian package pkg,
// or ends t through Missing.
func Tool(t testing.TB, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		Missing(t, "%s (Debian package %s) is missing", name, pkg)
	}
	return path
}
