package protocol

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// EnrollFileName is the enrollment file's name; an agent package installs
// it under /etc/cordon, a macOS or Windows zip carries it beside the
// binary.
const EnrollFileName = "agent-enroll.json"

// MaxEnrollFile bounds an enrollment file: three short strings.
const MaxEnrollFile = 4 << 10

// EnrollFile is what `cordon-server package agent` bakes into a package
// and `cordon-agent enroll --from-file` reads: everything `enroll` takes
// on its command line, so a package enrolls without anyone typing.
type EnrollFile struct {
	// Server is https://HOST:PORT of the console listener.
	Server string `json:"server"`
	// CAFingerprint pins the root CA (SHA-256, hex). A file must pin: a
	// package copied to 400 laptops never trusts on first use.
	CAFingerprint string `json:"ca_fingerprint"`
	Token         string `json:"token"`
}

// Check validates an EnrollFile's shape; the server judges the token.
func (f *EnrollFile) Check() error {
	if err := checkLens(map[string]string{"server": f.Server, "ca_fingerprint": f.CAFingerprint, "token": f.Token}, 256); err != nil {
		return err
	}
	u, err := url.Parse(f.Server)
	switch {
	case f.Server == "":
		return errors.New("server is required")
	case err != nil || u.Scheme != "https" || u.Host == "" || u.Hostname() == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "":
		return fmt.Errorf("server must be https://HOST:PORT, got %q", f.Server)
	case f.Token == "":
		return errors.New("token is required")
	}
	fp := strings.ToLower(strings.NewReplacer(":", "", " ", "").Replace(f.CAFingerprint))
	if len(fp) != 64 || strings.Trim(fp, "0123456789abcdef") != "" {
		return errors.New("ca_fingerprint must be the root CA's SHA-256 in hex (64 digits, colons allowed)")
	}
	return nil
}
