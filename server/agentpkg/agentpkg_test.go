package agentpkg_test

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/enroll"
	"github.com/cordon-mdm/cordon/internal/input"
	"github.com/cordon-mdm/cordon/internal/testbed"
	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/server/agentpkg"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/store"
)

// darwinBinary cross-compiles a tiny program for macOS: a real Mach-O.
func darwinBinary(t *testing.T) string {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\nfunc main() {}\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module hello\n"), 0o644)
	bin := filepath.Join(dir, "hello")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=darwin", "GOARCH=arm64", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

func TestBuildZipBakesAPinnedTokenAndAuditsIt(t *testing.T) {
	_, st, ca := testbed.StoreAndCA(t)
	log := audit.New(st, nil)
	tokens := enroll.New(nil, nil, nil)
	bin := darwinBinary(t)
	b, err := agentpkg.New(tokens, st, log, agentpkg.FileBuild{Path: bin, Version: "v1.2.0"}, "https://cordon.example:8443", ca.RootFingerprint())
	if err != nil {
		t.Fatal(err)
	}
	pkg, err := b.Build(t.Context(), agentpkg.Request{OS: "darwin", Arch: "arm64", Format: "zip", TokenUses: 400, TTL: 72 * time.Hour}, "it@agency.gov", "10.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(pkg.Body), int64(len(pkg.Body)))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]*zip.File{}
	for _, f := range zr.File {
		files[f.Name] = f
	}
	if f := files["cordon-agent"]; f == nil || f.Mode().Perm() != 0o755 {
		t.Fatalf("binary in the zip: %+v", f)
	}
	f := files[protocol.EnrollFileName]
	if f == nil || f.Mode().Perm() != 0o600 || files["INSTALL.txt"] == nil {
		t.Fatalf("zip holds %v", files)
	}
	rc, _ := f.Open()
	raw, _ := io.ReadAll(rc)
	var ef protocol.EnrollFile
	if err := input.Unmarshal(raw, &ef); err != nil || ef.Server != "https://cordon.example:8443" || ef.CAFingerprint != ca.RootFingerprint() {
		t.Fatalf("enrollment file %s: %v", raw, err)
	}
	var tok store.EnrollmentToken
	if err := st.DB().First(&tok, "id = ?", pkg.TokenID).Error; err != nil || tok.Purpose != store.TokenPurposeAgentPackage ||
		tok.UsesLeft != 400 || !strings.HasPrefix(ef.Token, "cdt_"+tok.ID+"_") {
		t.Fatalf("stored token %+v %v", tok, err)
	}
	entries, err := st.ListAudit(t.Context(), store.AuditQuery{Action: agentpkg.ActionBuilt, Limit: 10})
	if err != nil || len(entries) != 1 {
		t.Fatalf("audit: %v %v", entries, err)
	}
	var d map[string]string
	json.Unmarshal([]byte(entries[0].Details), &d)
	if d["token_id"] != tok.ID || d["os"] != "darwin" || d["token_uses"] != "400" || d["ttl"] != "72h0m0s" || d["agent_version"] != "1.2.0" ||
		strings.Contains(entries[0].Details, ef.Token) {
		t.Fatalf("audit details %v", entries[0].Details)
	}
}

// A refused build leaves no token behind: wrong platform, bad request.
func TestBuildRefusesAndLeavesNothing(t *testing.T) {
	_, st, ca := testbed.StoreAndCA(t)
	self, _ := os.Executable() // a linux ELF, not a Mach-O
	b, err := agentpkg.New(enroll.New(nil, nil, nil), st, audit.New(st, nil), agentpkg.FileBuild{Path: self, Version: "1.0.0"},
		"https://cordon.example:8443", ca.RootFingerprint())
	if err != nil {
		t.Fatal(err)
	}
	for name, req := range map[string]agentpkg.Request{
		"mach-o wanted":  {OS: "darwin", Arch: "arm64", Format: "zip", TokenUses: 1, TTL: time.Hour},
		"rpm for darwin": {OS: "darwin", Arch: "arm64", Format: "rpm", TokenUses: 1, TTL: time.Hour},
		"uses 0":         {OS: "darwin", Arch: "arm64", Format: "zip", TokenUses: 0, TTL: time.Hour},
		"ttl 0":          {OS: "darwin", Arch: "arm64", Format: "zip", TokenUses: 1},
		"plan9":          {OS: "plan9", Arch: "arm64", Format: "zip", TokenUses: 1, TTL: time.Hour},
	} {
		if _, err := b.Build(t.Context(), req, "it", "local"); err == nil {
			t.Errorf("%s: built", name)
		}
	}
	var n int64
	st.DB().Model(&store.EnrollmentToken{}).Count(&n)
	if n != 0 {
		t.Fatalf("%d tokens left by refused builds", n)
	}
	if _, err := agentpkg.New(enroll.New(nil, nil, nil), st, audit.New(st, nil), agentpkg.NoBuilds{}, "http://x:1", ca.RootFingerprint()); err == nil {
		t.Error("an http enrollment URL was accepted")
	}
}
