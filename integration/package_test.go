package integration

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/internal/needs"
	"github.com/cordon-mdm/cordon/internal/pkgbuild"
	"github.com/cordon-mdm/cordon/internal/testenv"
	"github.com/cordon-mdm/cordon/packaging"
	"github.com/cordon-mdm/cordon/packaging/units"
)

// TestPackage is issue 20's acceptance 1: the packages `make package`
// builds (the same internal/pkgbuild code, into a temp dir) install with
// dpkg on this machine, the server starts from the packaged config as the
// cordon user, remove keeps the data, purge leaves nothing the package
// installed, both units pass systemd-analyze verify and lintian finds no
// error. It installs into the real root, so it refuses to run where a
// cordon user, /var/lib/cordon or either package already exists, and
// purges what it installed even when it fails.
func TestPackage(t *testing.T) {
	if os.Geteuid() != 0 {
		needs.Missing(t, "installing packages with dpkg needs root")
	}
	dpkg := needs.Tool(t, "dpkg", "dpkg")
	needs.Tool(t, "dpkg-deb", "dpkg")
	lintian := needs.Tool(t, "lintian", "lintian")
	analyze := needs.Tool(t, "systemd-analyze", "systemd")
	rpmTool := needs.Tool(t, "rpm", "rpm")
	setpriv := needs.Tool(t, "setpriv", "util-linux")
	for _, pkg := range []string{"cordon-server", "cordon-agent"} {
		if out, err := exec.Command("dpkg-query", "-W", "-f", "${Status}", pkg).Output(); err == nil && strings.Contains(string(out), "installed") {
			t.Fatalf("%s is already installed on this machine (%s): the test will not touch it", pkg, out)
		}
	}
	if _, err := user.Lookup("cordon"); err == nil {
		t.Fatal("a cordon user exists on this machine: the test will not touch it")
	}
	for _, p := range []string{"/var/lib/cordon", "/etc/cordon"} {
		if _, err := os.Lstat(p); err == nil {
			t.Fatalf("%s exists on this machine: the test will not touch it", p)
		}
	}

	dist := t.TempDir()
	built, err := pkgbuild.Build(pkgbuild.Options{Out: dist, Dir: "..", Version: "v1.2.3-4-gabcdef0",
		Targets: []string{"linux/amd64", "linux/arm64"}})
	if err != nil {
		t.Fatal(err)
	}
	const version = "1.2.3+4.gabcdef0"
	debs := map[string]string{}
	for _, arch := range []string{"amd64", "arm64"} {
		for _, mk := range []func([]byte, string, string) packaging.Package{packaging.Agent, packaging.Server} {
			for _, format := range []string{"deb", "rpm"} {
				p := mk(nil, version, arch)
				p.Format = format
				path := filepath.Join(dist, p.FileName())
				if _, err := os.Stat(path); err != nil {
					t.Fatalf("make package did not write %s (wrote %v)", p.FileName(), built)
				}
				if format == "deb" {
					info := pkgRun(t, "dpkg-deb", "-f", path, "Package", "Version", "Architecture")
					if want := fmt.Sprintf("Package: %s\nVersion: %s\nArchitecture: %s", p.Name, version, arch); info != want {
						t.Errorf("%s: control %q, want %q", path, info, want)
					}
					debs[p.Name+"/"+arch] = path
				} else {
					q := pkgRun(t, rpmTool, "-qp", "--qf", "%{NAME} %{VERSION} %{RELEASE}", path)
					if want := p.Name + " " + version + " 1"; q != want {
						t.Errorf("%s: rpm header %q, want %q", path, q, want)
					}
				}
			}
		}
	}

	// lintian on every .deb: no E:, and each W: shown (the README's
	// packaging notes say why each one stays).
	for _, deb := range debs {
		out, _ := exec.Command(lintian, "--tag-display-limit", "0", deb).CombinedOutput()
		for _, l := range strings.Split(string(out), "\n") {
			switch {
			case strings.HasPrefix(l, "E:"):
				t.Errorf("lintian %s: %s", filepath.Base(deb), l)
			case strings.HasPrefix(l, "W:"):
				t.Logf("lintian %s: %s", filepath.Base(deb), l)
			}
		}
	}

	server, agent := debs["cordon-server/"+runtime.GOARCH], debs["cordon-agent/"+runtime.GOARCH]
	if server == "" {
		t.Fatalf("no package for this machine's architecture %s", runtime.GOARCH)
	}
	t.Cleanup(func() {
		exec.Command(dpkg, "--purge", "cordon-server", "cordon-agent").Run()
		os.RemoveAll("/var/lib/cordon")
		exec.Command("userdel", "cordon").Run()
		exec.Command("groupdel", "cordon").Run()
		os.Remove("/etc/cordon")
	})

	t.Run("purge right after install leaves nothing", func(t *testing.T) {
		before := existing(t, server)
		pkgRun(t, dpkg, "-i", server)
		files := installedFiles(t, "cordon-server")
		checkServerInstall(t)
		pkgRun(t, dpkg, "--purge", "cordon-server")
		leftOver(t, files, before)
		for _, p := range []string{"/var/lib/cordon", "/etc/cordon"} {
			if _, err := os.Lstat(p); err == nil {
				t.Errorf("purge left %s", p)
			}
		}
		if _, err := user.Lookup("cordon"); err == nil {
			t.Error("purge left the cordon user, though it owned nothing")
		}
	})

	t.Run("install, serve, remove keeps the data, purge", func(t *testing.T) {
		before := existing(t, server)
		pkgRun(t, dpkg, "-i", server, agent)
		files := installedFiles(t, "cordon-server")
		checkServerInstall(t)
		if out := pkgRun(t, units.AgentBinary, "version"); !strings.Contains(out, "1.2.3-4-gabcdef0") {
			t.Errorf("installed agent says %q", out)
		}
		for _, unit := range []string{units.ServerUnitPath, units.AgentUnitPath} {
			if out, err := exec.Command(analyze, "verify", "--man=no", unit).CombinedOutput(); err != nil || len(out) > 0 {
				t.Errorf("systemd-analyze verify %s: %v\n%s", unit, err, out)
			}
		}

		serveFromPackagedConfig(t, setpriv)

		pkgRun(t, dpkg, "-r", "cordon-server")
		for _, f := range []string{units.ServerBinary, units.ServerUnitPath} {
			if _, err := os.Lstat(f); err == nil {
				t.Errorf("dpkg -r left %s", f)
			}
		}
		if _, err := os.Stat(packaging.ServerConfigPath); err != nil {
			t.Errorf("dpkg -r removed the conffile: %v", err)
		}
		if _, err := os.Stat("/var/lib/cordon/ca"); err != nil {
			t.Errorf("dpkg -r did not keep the data: %v", err)
		}
		if _, err := user.Lookup("cordon"); err != nil {
			t.Errorf("dpkg -r removed the cordon user: %v", err)
		}

		out := pkgRun(t, dpkg, "--purge", "cordon-server")
		leftOver(t, files, before)
		if _, err := os.Lstat(packaging.ServerConfigPath); err == nil {
			t.Error("purge left the conffile")
		}
		// Never the CA the server created, nor the user owning it.
		if _, err := os.Stat("/var/lib/cordon/ca"); err != nil {
			t.Errorf("purge deleted the server's CA: %v", err)
		}
		if _, err := user.Lookup("cordon"); err != nil {
			t.Errorf("purge removed the user that owns the kept data: %v", err)
		}
		if !strings.Contains(out, "kept /var/lib/cordon") {
			t.Errorf("purge did not say it kept the data:\n%s", out)
		}
		pkgRun(t, dpkg, "--purge", "cordon-agent")
		if _, err := os.Lstat(units.AgentBinary); err == nil {
			t.Error("purge of cordon-agent left its binary")
		}
	})
}

// checkServerInstall: the files are where the unit expects them, the user
// and the data dir exist, the config is readable by the server only.
func checkServerInstall(t *testing.T) {
	t.Helper()
	unit, err := os.ReadFile(units.ServerUnitPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(unit), "\nExecStart="+units.ServerBinary+" serve --config "+packaging.ServerConfigPath+"\n") ||
		!strings.Contains(string(unit), "\nUser=cordon\n") {
		t.Errorf("unit does not run %s --config %s as cordon:\n%s", units.ServerBinary, packaging.ServerConfigPath, unit)
	}
	if st, err := os.Stat(units.ServerBinary); err != nil || st.Mode().Perm() != 0o755 {
		t.Errorf("%s: %v %v", units.ServerBinary, st, err)
	}
	u, err := user.Lookup("cordon")
	if err != nil {
		t.Fatalf("the package did not create the cordon user: %v", err)
	}
	checkOwner(t, "/var/lib/cordon", u, fs.ModeDir|0o750, true)
	checkOwner(t, packaging.ServerConfigPath, u, 0o640, false)
}

func checkOwner(t *testing.T, path string, u *user.User, mode fs.FileMode, byUser bool) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	sys := st.Sys().(*syscall.Stat_t)
	uid, gid := "0", u.Gid
	if byUser {
		uid = u.Uid
	}
	if st.Mode() != mode || fmt.Sprint(sys.Uid) != uid || fmt.Sprint(sys.Gid) != gid {
		t.Errorf("%s: mode %v uid %d gid %d, want %v %s:%s", path, st.Mode(), sys.Uid, sys.Gid, mode, uid, gid)
	}
}

// serveFromPackagedConfig runs the installed server as the cordon user
// with the packaged config (only the ports moved to free ones, by flags,
// which win over the file) and checks it answers and made its data.
func serveFromPackagedConfig(t *testing.T, setpriv string) {
	t.Helper()
	listen, agentListen := freeAddr(t), freeAddr(t)
	// setpriv execs the server as cordon:cordon with no session around it,
	// as systemd's User=/Group= do.
	cmd := exec.Command(setpriv, "--reuid=cordon", "--regid=cordon", "--init-groups", "--", units.ServerBinary, "serve",
		"--config", packaging.ServerConfigPath, "--listen", listen, "--agent-listen", agentListen)
	logs, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	defer cmd.Process.Kill() // only if the SIGTERM below did not end it
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(logs)
		for sc.Scan() {
			t.Log("cordon-server: " + sc.Text())
		}
	}()
	client := &http.Client{Timeout: 2 * time.Second, Transport: testenv.Validating(t, &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}})}
	var lastErr error
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
		resp, err := client.Get("https://" + listen + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				lastErr = nil
				break
			}
			err = errors.New(resp.Status)
		}
		lastErr = err
	}
	if lastErr != nil {
		t.Errorf("the packaged server does not answer /healthz on %s: %v", listen, lastErr)
	}
	u, _ := user.Lookup("cordon")
	entries, _ := os.ReadDir("/var/lib/cordon")
	if len(entries) == 0 {
		t.Error("the server made no data in /var/lib/cordon")
	}
	for _, e := range entries {
		st, err := os.Stat(filepath.Join("/var/lib/cordon", e.Name()))
		if err == nil && u != nil && fmt.Sprint(st.Sys().(*syscall.Stat_t).Uid) != u.Uid {
			t.Errorf("/var/lib/cordon/%s is not the cordon user's", e.Name())
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	<-done // the log pipe ends when the server does
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("cordon-server did not stop cleanly on SIGTERM: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Error("cordon-server did not stop within 60s of SIGTERM")
	}
}

// installedFiles is `dpkg -L pkg`: every path the package installed.
func installedFiles(t *testing.T, pkg string) []string {
	t.Helper()
	var files []string
	for _, l := range strings.Split(pkgRun(t, "dpkg", "-L", pkg), "\n") {
		if strings.HasPrefix(l, "/") && l != "/." {
			files = append(files, l)
		}
	}
	if len(files) == 0 {
		t.Fatalf("dpkg -L %s lists nothing", pkg)
	}
	return files
}

// existing is which paths of deb's contents exist before it is installed
// (/usr, /etc ...): purge must remove every other one.
func existing(t *testing.T, deb string) map[string]bool {
	t.Helper()
	have := map[string]bool{}
	for _, l := range strings.Split(pkgRun(t, "dpkg-deb", "-c", deb), "\n") {
		f := strings.Fields(l)
		if len(f) < 6 {
			continue
		}
		p := "/" + strings.TrimSuffix(strings.TrimPrefix(f[5], "./"), "/")
		if _, err := os.Lstat(p); err == nil {
			have[p] = true
		}
	}
	return have
}

func leftOver(t *testing.T, files []string, before map[string]bool) {
	t.Helper()
	for _, f := range files {
		if before[f] {
			continue
		}
		if _, err := os.Lstat(f); err == nil {
			t.Errorf("purge left %s, which the package installed", f)
		}
	}
}

func pkgRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return strings.TrimRight(string(out), "\n")
}
