package agentpkg

import (
	"bytes"

	"github.com/cordon-mdm/cordon/packaging"
)

// EnrollFilePath is where a Linux agent package installs the enrollment
// file; its post-install script enrolls from it (packaging.Agent).
const EnrollFilePath = packaging.AgentEnrollFile

// linuxPackage is the agent's .deb or .rpm with the enrollment file
// added as a config file (0600, root's): dpkg keeps it through a removal
// and takes it away only with a purge. A re-install enrolls nothing new:
// the agent sees its identity in the state dir and stops there.
func linuxPackage(req Request, version string, binary, file []byte, tokenID string) (*Package, error) {
	p := packaging.Agent(binary, version, req.Arch)
	p.Format = req.Format
	p.Files = append(p.Files, packaging.File{Dst: EnrollFilePath, Body: file, Mode: 0o600, Config: true})
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		return nil, err
	}
	ct := "application/vnd.debian.binary-package"
	if req.Format == "rpm" {
		ct = "application/x-rpm"
	}
	return &Package{FileName: "enroll-" + tokenID[:8] + "-" + p.FileName(), ContentType: ct, Body: buf.Bytes()}, nil
}

// assemble builds the package req asks for around the enrollment file.
func assemble(req Request, version string, binary, file []byte, tokenID string) (*Package, error) {
	if req.OS == "linux" {
		return linuxPackage(req, version, binary, file, tokenID)
	}
	return zipPackage(req, version, binary, file, tokenID)
}
