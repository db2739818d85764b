package macos

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/protocol"
)

var errExit1 = errors.New("exit status 1")

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func out(cmd string, stdout []byte) Output { return Output{Command: cmd, Stdout: stdout} }

// valid checks a section the way the server will: a report carrying it
// must pass protocol's Check.
func valid(t *testing.T, p protocol.Posture) {
	t.Helper()
	p.CollectedAt, p.OS.Platform = time.Unix(1, 0), "darwin/arm64"
	if err := p.Check(); err != nil {
		t.Errorf("report fails Check: %v", err)
	}
}

func hasUnknown(t *testing.T, pv protocol.Provenance, fields ...string) {
	t.Helper()
	for _, f := range fields {
		if pv.Unknown[f] == "" {
			t.Errorf("Unknown[%q] missing; Unknown = %v", f, pv.Unknown)
		}
	}
}

func readFixture(name string) ([]byte, error) { return os.ReadFile(filepath.Join("testdata", name)) }
