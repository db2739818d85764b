// Package pkgbuild builds Cordon's release artifacts: the binaries, the
// Linux packages (through packaging) and the macOS and Windows agent
// archives. `make package` runs it through internal/tools/pkgbuild, and
// the packaging acceptance test runs the same code into a temp dir.
package pkgbuild

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/cordon-mdm/cordon/packaging"
)

// DefaultTargets are what `make package` builds: agent and server
// packages for each Linux target, the agent alone for the others.
var DefaultTargets = []string{"linux/amd64", "linux/arm64", "darwin/arm64", "darwin/amd64", "windows/amd64"}

// Options say what to build and where.
type Options struct {
	Out     string    // directory the artifacts go to (created)
	Dir     string    // the module's root (default: the current directory)
	Version string    // the build's version (default: git describe --tags --always --dirty)
	FIPS    string    // GOFIPS140 module version, empty for the default build
	Targets []string  // GOOS/GOARCH pairs (default DefaultTargets)
	Go      string    // the go command (default $GO or "go")
	Log     io.Writer // progress lines (default: none)
}

// Build builds everything Options ask for and returns the paths written.
func Build(o Options) ([]string, error) {
	if o.Dir == "" {
		o.Dir = "."
	}
	if o.Go == "" {
		o.Go = os.Getenv("GO")
	}
	if o.Go == "" {
		o.Go = "go"
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if len(o.Targets) == 0 {
		o.Targets = DefaultTargets
	}
	if o.Version == "" {
		v, err := exec.Command("git", "-C", o.Dir, "describe", "--tags", "--always", "--dirty").Output()
		if err != nil {
			return nil, fmt.Errorf("version: git describe: %w (give --version)", err)
		}
		o.Version = strings.TrimSpace(string(v))
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, err
	}
	bins, err := os.MkdirTemp("", "cordon-pkgbuild-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(bins)
	pv := packaging.CleanVersion(o.Version)
	var written []string
	for _, t := range o.Targets {
		goos, goarch, ok := strings.Cut(t, "/")
		if !ok {
			return written, fmt.Errorf("target %q: want GOOS/GOARCH", t)
		}
		cmds := []string{"./cmd/cordon-agent"}
		if goos == "linux" {
			cmds = append(cmds, "./cmd/cordon-server")
		}
		dir := filepath.Join(bins, goos+"-"+goarch)
		fmt.Fprintf(o.Log, "pkgbuild: building %s for %s (version %s)\n", strings.Join(cmds, " "), t, o.Version)
		if err := o.goBuild(goos, goarch, dir, cmds); err != nil {
			return written, err
		}
		var files []string
		switch goos {
		case "linux":
			files, err = linuxPackages(o.Out, dir, pv, goarch)
		case "windows":
			files, err = agentZip(o.Out, dir, pv, goarch)
		default:
			files, err = agentTarball(o.Out, dir, pv, goos, goarch)
		}
		written = append(written, files...)
		if err != nil {
			return written, err
		}
	}
	return written, nil
}

func (o Options) goBuild(goos, goarch, dir string, cmds []string) error {
	args := append([]string{"build", "-trimpath", "-ldflags",
		"-s -w -X github.com/cordon-mdm/cordon/internal/version.Version=" + o.Version, "-o", dir + string(filepath.Separator)}, cmds...)
	if goos == "linux" {
		// Position-independent: the kernel places the binary at a random
		// address (ASLR), as Debian builds every program. With CGO_ENABLED=0
		// Go links it internally; it needs no library, only the dynamic
		// loader (ld.so, on every deb and rpm system) to relocate it.
		args = append([]string{"build", "-buildmode=pie"}, args[1:]...)
	}
	cmd := exec.CommandContext(context.Background(), o.Go, args...)
	cmd.Dir = o.Dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch)
	if o.FIPS != "" {
		cmd.Env = append(cmd.Env, "GOFIPS140="+o.FIPS)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s/%s: %w: %s", goos, goarch, err, stderr.String())
	}
	return nil
}

func linuxPackages(out, bins, version, arch string) ([]string, error) {
	agent, err := os.ReadFile(filepath.Join(bins, "cordon-agent"))
	if err != nil {
		return nil, err
	}
	server, err := os.ReadFile(filepath.Join(bins, "cordon-server"))
	if err != nil {
		return nil, err
	}
	var written []string
	for _, format := range []string{"deb", "rpm"} {
		for _, p := range []packaging.Package{packaging.Agent(agent, version, arch), packaging.Server(server, version, arch)} {
			p.Format = format
			path := filepath.Join(out, p.FileName())
			if err := writeFile(path, p.Write); err != nil {
				return written, err
			}
			written = append(written, path)
		}
	}
	return written, nil
}

// writeFile writes through a temp file renamed into place, so a failed
// build leaves no half package in dist/.
func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".pkgbuild-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// installText is the INSTALL.txt of the macOS and Windows archives.
func installText(goos string) string {
	where, admin := "/usr/local/bin/cordon-agent", "sudo "
	copyStep := "sudo install -m 0755 cordon-agent /usr/local/bin/cordon-agent"
	svc := "a launchd daemon (/Library/LaunchDaemons/cordon-agent.plist) and, for every user session, the tray's\n   LaunchAgent (/Library/LaunchAgents/cordon-agent-tray.plist)"
	if goos == "windows" {
		where, admin = `C:\Program Files\Cordon Agent\cordon-agent.exe`, ""
		copyStep = `mkdir "C:\Program Files\Cordon Agent" & copy cordon-agent.exe "C:\Program Files\Cordon Agent\"`
		svc = "a Windows service (cordon-agent, automatic start) and the tray's Run key\n   (HKLM\\Software\\Microsoft\\Windows\\CurrentVersion\\Run)"
	}
	shell := "a terminal"
	if goos == "windows" {
		shell = "an administrator command prompt"
	}
	return fmt.Sprintf(`Cordon MDM agent: installing by hand

All steps in %[1]s%[6]s.

1. Put the binary where it stays:
     %[2]s
2. Enroll the device with the token IT gave you, pinning the server's CA
   (the fingerprint is what `+"`cordon-server ca fingerprint`"+` prints):
     %[5]s"%[3]s" enroll --server https://mdm.agency.example:8443 --token TOKEN --ca-fingerprint HEX
3. Register the service and the tray's autostart, and start it:
     %[5]s"%[3]s" install
   This creates %[4]s.
4. Check it runs:
     %[5]s"%[3]s" status

To remove: %[5]s"%[3]s" uninstall (the state, the device's identity, stays).
`, shell, copyStep, where, svc, admin, map[bool]string{true: "", false: " (sudo where shown)"}[goos == "windows"])
}

func agentTarball(out, bins, version, goos, goarch string) ([]string, error) {
	bin, err := os.ReadFile(filepath.Join(bins, "cordon-agent"))
	if err != nil {
		return nil, err
	}
	path := filepath.Join(out, fmt.Sprintf("cordon-agent_%s_%s_%s.tar.gz", version, goos, goarch))
	return []string{path}, writeFile(path, func(w io.Writer) error {
		zw := gzip.NewWriter(w)
		tw := tar.NewWriter(zw)
		for _, f := range []struct {
			name string
			body []byte
			mode int64
		}{{"cordon-agent", bin, 0o755}, {"INSTALL.txt", []byte(installText(goos)), 0o644}} {
			if err := tw.WriteHeader(&tar.Header{Name: "cordon-agent/" + f.name, Mode: f.mode, Size: int64(len(f.body)), Typeflag: tar.TypeReg}); err != nil {
				return err
			}
			if _, err := tw.Write(f.body); err != nil {
				return err
			}
		}
		return errors.Join(tw.Close(), zw.Close())
	})
}

func agentZip(out, bins, version, goarch string) ([]string, error) {
	bin, err := os.ReadFile(filepath.Join(bins, "cordon-agent.exe"))
	if err != nil {
		return nil, err
	}
	path := filepath.Join(out, fmt.Sprintf("cordon-agent_%s_windows_%s.zip", version, goarch))
	return []string{path}, writeFile(path, func(w io.Writer) error {
		zw := zip.NewWriter(w)
		for _, f := range []struct {
			name string
			body []byte
		}{{"cordon-agent.exe", bin}, {"INSTALL.txt", []byte(strings.ReplaceAll(installText("windows"), "\n", "\r\n"))}} {
			fw, err := zw.Create("cordon-agent/" + f.name)
			if err != nil {
				return err
			}
			if _, err := fw.Write(f.body); err != nil {
				return err
			}
		}
		return zw.Close()
	})
}
