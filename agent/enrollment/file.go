package enrollment

import (
	"fmt"
	"io"
	"os"

	"github.com/cordon-mdm/cordon/internal/input"
	"github.com/cordon-mdm/cordon/protocol"
)

// ReadFile reads and validates an enrollment file (what an agent package
// installs as /etc/cordon/agent-enroll.json). The token in it enrolls
// devices, so a file anyone may rewrite is refused (it could point this
// device at another server), and one anyone may read comes back with a
// warning to print.
func ReadFile(path string) (f protocol.EnrollFile, warning string, err error) {
	fh, err := os.Open(path)
	if err != nil {
		return f, "", err
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return f, "", err
	}
	if !fi.Mode().IsRegular() {
		return f, "", fmt.Errorf("%s is not a regular file", path)
	}
	if warning, err = checkFileMode(path, fi); err != nil {
		return f, "", err
	}
	data, err := io.ReadAll(io.LimitReader(fh, protocol.MaxEnrollFile+1))
	if err != nil {
		return f, "", fmt.Errorf("%s: %w", path, err)
	}
	if len(data) > protocol.MaxEnrollFile {
		return f, "", fmt.Errorf("%s: larger than %d bytes: not an enrollment file", path, protocol.MaxEnrollFile)
	}
	if err := input.Unmarshal(data, &f); err != nil {
		return f, "", fmt.Errorf("%s: %w", path, err)
	}
	return f, warning, nil
}
