package packaging

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cordon-mdm/cordon/internal/needs"
)

func TestCleanVersion(t *testing.T) {
	for in, want := range map[string]string{
		"v1.2.3": "1.2.3", "1.2.3": "1.2.3", "v0.3.0-5-gabc123": "0.3.0+5.gabc123",
		"v0.3.0-5-gabc123-dirty": "0.3.0+5.gabc123.dirty", "abc1234": "0~git.abc1234",
		"88ab484-dirty": "0~git.88ab484+dirty", "": "0~git",
	} {
		got := CleanVersion(in)
		if got != want {
			t.Errorf("CleanVersion(%q) = %q, want %q", in, got, want)
		}
		if !versionRE.MatchString(got) {
			t.Errorf("CleanVersion(%q) = %q, which Write refuses", in, got)
		}
	}
}

func TestFileName(t *testing.T) {
	p := Agent(nil, "1.2.3", "amd64")
	for format, want := range map[string]string{"deb": "cordon-agent_1.2.3_amd64.deb", "rpm": "cordon-agent-1.2.3-1.x86_64.rpm"} {
		p.Format = format
		if got := p.FileName(); got != want {
			t.Errorf("%s: FileName() = %q, want %q", format, got, want)
		}
	}
	s := Server(nil, "1.2.3", "arm64")
	s.Format = "rpm"
	if got := s.FileName(); got != "cordon-server-1.2.3-1.aarch64.rpm" {
		t.Errorf("server rpm FileName() = %q", got)
	}
}

func TestWriteRefusesBadInput(t *testing.T) {
	for name, p := range map[string]Package{
		"format":  {Name: "x1", Version: "1.0", Arch: "amd64", Format: "apk"},
		"version": {Name: "x1", Version: "v1-2", Arch: "amd64", Format: "deb"},
		"arch":    {Name: "x1", Version: "1.0", Arch: "x86_64", Format: "deb"},
		"name":    {Name: "X Y", Version: "1.0", Arch: "amd64", Format: "deb"},
		"path":    {Name: "x1", Version: "1.0", Arch: "amd64", Format: "deb", Files: []File{{Dst: "etc/../x"}}},
		"twice":   {Name: "x1", Version: "1.0", Arch: "amd64", Format: "deb", Files: []File{{Dst: "/a"}, {Dst: "/a"}}},
	} {
		var buf bytes.Buffer
		if err := p.Write(&buf); err == nil || buf.Len() > 0 {
			t.Errorf("%s: Write = %v with %d bytes, want an error and nothing written", name, err, buf.Len())
		}
	}
}

// TestPackagesAsDpkgAndRpmSeeThem writes both packages in both formats
// and reads them back with dpkg-deb and rpm: names, versions, the files,
// the conffiles and the maintainer scripts are where they should be.
func TestPackagesAsDpkgAndRpmSeeThem(t *testing.T) {
	dpkgDeb := needs.Tool(t, "dpkg-deb", "dpkg")
	rpmTool := needs.Tool(t, "rpm", "rpm")
	dir := t.TempDir()
	body := []byte("#!/bin/sh\necho stand-in\n")
	for _, format := range []string{"deb", "rpm"} {
		for _, p := range []Package{Agent(body, "1.2.3", "amd64"), Server(body, "1.2.3", "arm64")} {
			p.Format = format
			path := filepath.Join(dir, p.FileName())
			var buf bytes.Buffer
			if err := p.Write(&buf); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			var list, conf string
			if format == "deb" {
				list = run(t, dpkgDeb, "-c", path)
				conf = run(t, dpkgDeb, "-I", path, "conffiles")
				ctl := run(t, dpkgDeb, "-f", path, "Package", "Version", "Architecture")
				want := "Package: " + p.Name + "\nVersion: 1.2.3\nArchitecture: " + p.Arch + "\n"
				if ctl != want {
					t.Errorf("%s control:\n%s\nwant:\n%s", path, ctl, want)
				}
				if s := run(t, dpkgDeb, "-I", path, "postinst"); !strings.Contains(s, "systemctl enable "+p.Name+".service") {
					t.Errorf("%s postinst does not enable the unit:\n%s", path, s)
				}
			} else {
				list = run(t, rpmTool, "-qpl", path)
				conf = run(t, rpmTool, "-qpc", path)
				if s := run(t, rpmTool, "-qp", "--scripts", path); !strings.Contains(s, "systemctl enable "+p.Name+".service") {
					t.Errorf("%s scripts do not enable the unit:\n%s", path, s)
				}
			}
			for _, f := range p.Files {
				if !strings.Contains(list, f.Dst+"\n") {
					t.Errorf("%s lacks %s:\n%s", path, f.Dst, list)
				}
				if f.Config != strings.Contains(conf, f.Dst) {
					t.Errorf("%s: %s conffile = %v, want %v", path, f.Dst, !f.Config, f.Config)
				}
			}
		}
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}
