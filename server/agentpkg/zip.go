package agentpkg

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/cordon-mdm/cordon/protocol"
)

// zipPackage is the macOS or Windows package: the binary, the enrollment
// file and the steps, for IT to run as an administrator (there is no
// pure-Go .pkg or .msi here).
func zipPackage(req Request, version string, binary, file []byte, tokenID string) (*Package, error) {
	exe := "cordon-agent"
	if req.OS == "windows" {
		exe += ".exe"
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	now := time.Now()
	for _, f := range []struct {
		name string
		mode fs.FileMode
		body []byte
	}{
		{exe, 0o755, binary},
		{protocol.EnrollFileName, 0o600, file},
		{"INSTALL.txt", 0o644, []byte(installText(req, version))},
	} {
		h := &zip.FileHeader{Name: f.name, Method: zip.Deflate, Modified: now}
		h.SetMode(f.mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			return nil, err
		}
		if _, err := w.Write(f.body); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return &Package{FileName: fmt.Sprintf("cordon-agent-%s-%s-%s-enroll-%s.zip", version, req.OS, req.Arch, tokenID[:8]),
		ContentType: "application/zip", Body: buf.Bytes()}, nil
}

func installText(req Request, version string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Cordon agent %s for %s/%s, with an enrollment token.\n\n", version, req.OS, req.Arch)
	if req.OS == "windows" {
		b.WriteString(`In PowerShell run as Administrator, in this folder:

  New-Item -ItemType Directory -Force "$env:ProgramFiles\Cordon"
  Copy-Item cordon-agent.exe "$env:ProgramFiles\Cordon\"
  & "$env:ProgramFiles\Cordon\cordon-agent.exe" enroll --from-file agent-enroll.json
  & "$env:ProgramFiles\Cordon\cordon-agent.exe" install
`)
	} else {
		b.WriteString(`In Terminal, as an administrator, in this folder:

  xattr -d com.apple.quarantine cordon-agent 2>/dev/null
  sudo install -m 0755 cordon-agent /usr/local/bin/cordon-agent
  sudo cordon-agent enroll --from-file agent-enroll.json
  sudo cordon-agent install
`)
	}
	fmt.Fprintf(&b, `
"enroll" enrolls this machine with the Cordon server named in agent-enroll.json
and pins its root CA; "install" registers the agent as a system service. On a
machine that is enrolled already, "enroll --from-file" says so and changes
nothing.

agent-enroll.json holds an enrollment token that enrolls up to %d machines
until it expires: keep this folder where only IT can read it, and delete
agent-enroll.json from each machine after enrolling. An expired or used-up
token is refused by the server; ask IT for a new package then.
`, req.TokenUses)
	return b.String()
}
