// Package linkcheck lists what a Cordon binary links, for tests that keep
// the agent free of server code and every binary's cryptography accounted
// for. It runs `go list`, so it is for tests only.
package linkcheck

import (
	"bufio"
	"bytes"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// Package is one linked package and the module it comes from ("" for the
// standard library).
type Package struct {
	ImportPath, Module string
}

// Deps lists the packages the main package in dir links for goos/goarch
// (CGO_ENABLED=0, as every release is built).
func Deps(t testing.TB, dir, goos, goarch string) []Package {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{if .Module}}{{.Module.Path}}{{end}}", ".")
	cmd.Dir = dir
	cmd.Env = append(cmd.Environ(), "CGO_ENABLED=0")
	if goos != "" {
		cmd.Env = append(cmd.Env, "GOOS="+goos, "GOARCH="+goarch)
	}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps (%s/%s): %v", goos, goarch, err)
	}
	var pkgs []Package
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		path, mod, _ := strings.Cut(sc.Text(), " ")
		pkgs = append(pkgs, Package{ImportPath: path, Module: mod})
	}
	return pkgs
}

// cryptoPath matches import paths that implement or wrap cryptography.
// It is deliberately broad: a false alarm costs a line of documentation,
// a miss costs an unaccounted algorithm.
var cryptoPath = regexp.MustCompile(`(?i)(crypt|jose|pkcs|scep|nacl|cipher|25519|tls|ssh|kms|hkdf|pbkdf|argon|bcrypt|scrypt|chacha|poly1305|/aes|sha[0-9]|hmac|bigmod|nistec|mldsa|mlkem|/cert)`)

// CryptoModules returns, sorted, the modules outside the standard library
// (and outside Cordon itself) that bring cryptographic packages into the
// binary. Go's fips140=only mode polices only the standard library's
// crypto packages, so these are what a FIPS review must account for.
func CryptoModules(pkgs []Package) []string {
	var mods []string
	for _, p := range pkgs {
		if p.Module == "" || p.Module == "github.com/cordon-mdm/cordon" || !cryptoPath.MatchString(p.ImportPath) {
			continue
		}
		if !slices.Contains(mods, p.Module) {
			mods = append(mods, p.Module)
		}
	}
	slices.Sort(mods)
	return mods
}
