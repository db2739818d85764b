// Package packaging builds Cordon's .deb and .rpm packages in Go, with
// nfpm as a library: `make package` (internal/tools/pkgbuild) and
// `cordon-server package agent` both go through Package.Write, so no
// outside tool is needed. Agent and Server describe the two packages:
// their files, units (from packaging/units) and maintainer scripts.
package packaging

import (
	"crypto/fips140"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"
	"github.com/goreleaser/nfpm/v2/rpm"
)

// Package is one .deb or .rpm to build.
type Package struct {
	Name, Version, Arch, Format string // Arch is Go's (amd64, arm64); Format "deb" or "rpm"
	Description                 string // first line: the synopsis; the rest: the long description
	Depends                     []string
	Files                       []File
	Scripts                     Scripts
}

// File is one file of a package.
type File struct {
	Dst    string
	Body   []byte
	Mode   fs.FileMode
	Config bool // a conffile: kept on upgrade (if changed) and on remove, deleted on purge
}

// Scripts are the maintainer scripts' shell bodies. Each runs under
// /bin/sh with `set -e`. They are called the deb way ($1 = configure,
// remove, purge, upgrade, ...) or the rpm way ($1 = the number of
// instances left: 0 erase, 1 install, 2 upgrade); the scripts here
// handle both.
type Scripts struct{ PreInstall, PostInstall, PreRemove, PostRemove string }

// Who the packages say they come from.
const (
	maintainer = "Cordon MDM <cordon-mdm@users.noreply.github.com>"
	homepage   = "https://github.com/cordon-mdm/cordon"
	vendor     = "Cordon MDM"
	license    = "LicenseRef-Cordon"
)

var (
	nameRE    = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)
	versionRE = regexp.MustCompile(`^[0-9][A-Za-z0-9.+~]*$`)
	releaseRE = regexp.MustCompile(`^[0-9]+\.[0-9]`)
	archs     = map[string]bool{"amd64": true, "arm64": true, "386": true, "arm": true, "arm7": true, "riscv64": true, "ppc64le": true, "s390x": true}
)

func (p Package) packager() (nfpm.Packager, error) {
	switch p.Format {
	case "deb":
		return deb.Default, nil
	case "rpm":
		return rpm.DefaultRPM, nil
	}
	return nil, fmt.Errorf("packaging: format %q: want deb or rpm", p.Format)
}

// CleanVersion turns a build's version (v1.2.3, 1.2.3-4-gabcdef,
// abcdef-dirty, 0.1.0-dev) into one that dpkg and rpm both accept and
// that keeps the package native: starts with a digit, no '-' (dpkg would
// read it as a revision, rpm refuses it). A version that is not a release
// (not N.N...: a bare commit from git describe) becomes 0~git.VERSION,
// below every release.
func CleanVersion(v string) string {
	v = strings.TrimPrefix(strings.TrimSpace(v), "v")
	// git describe's "-N-gHASH" after a tag is a later build: '+' sorts
	// it above the tag in dpkg and rpm alike.
	v = strings.Replace(v, "-", "+", 1)
	v = strings.Map(func(r rune) rune {
		switch {
		case r >= '0' && r <= '9', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r == '.', r == '+', r == '~':
			return r
		}
		return '.'
	}, v)
	v = strings.Trim(v, ".")
	if !releaseRE.MatchString(v) {
		v = "0~git." + v
	}
	return strings.TrimSuffix(v, ".")
}

func (p Package) check() error {
	var errs []error
	if !nameRE.MatchString(p.Name) {
		errs = append(errs, fmt.Errorf("name %q: want lower case letters, digits, '+', '-', '.'", p.Name))
	}
	if !versionRE.MatchString(p.Version) {
		errs = append(errs, fmt.Errorf("version %q: want a digit first, then letters, digits, '.', '+', '~' (see CleanVersion)", p.Version))
	}
	if !archs[p.Arch] {
		errs = append(errs, fmt.Errorf("arch %q: want a Go GOARCH such as amd64 or arm64", p.Arch))
	}
	seen := map[string]bool{}
	for _, f := range p.Files {
		if !path.IsAbs(f.Dst) || path.Clean(f.Dst) != f.Dst {
			errs = append(errs, fmt.Errorf("file %q: want a clean absolute path", f.Dst))
		}
		if seen[f.Dst] {
			errs = append(errs, fmt.Errorf("file %q: given twice", f.Dst))
		}
		seen[f.Dst] = true
	}
	if len(errs) > 0 {
		return fmt.Errorf("packaging %s: %w", p.Name, errors.Join(errs...))
	}
	return nil
}

// info is the nfpm description of p; the file bodies and scripts are
// written under dir, where nfpm reads them from.
func (p Package) info(dir string) (*nfpm.Info, error) {
	synopsis, long, _ := strings.Cut(p.Description, "\n")
	info := &nfpm.Info{
		Name: p.Name, Arch: p.Arch, Platform: "linux", Version: p.Version, VersionSchema: "none",
		Section: "admin", Priority: "optional", Maintainer: maintainer, Vendor: vendor, Homepage: homepage,
		License: license, Description: strings.TrimSpace(synopsis + "\n" + long), MTime: mtime(),
		Overridables: nfpm.Overridables{Depends: p.Depends, Umask: 0o022},
	}
	if p.Format == "rpm" {
		// rpm's file name and NEVRA carry a release; deb stays native.
		info.Release = "1"
		info.RPM.Summary = synopsis
		info.RPM.Group = "System Environment/Daemons"
		info.RPM.Packager = maintainer
	}
	for i, f := range p.Files {
		src := filepath.Join(dir, "f"+strconv.Itoa(i))
		if err := os.WriteFile(src, f.Body, 0o600); err != nil {
			return nil, err
		}
		typ := ""
		if f.Config {
			typ = files.TypeConfigNoReplace
		}
		mode := f.Mode
		if mode == 0 {
			mode = 0o644
		}
		info.Contents = append(info.Contents, &files.Content{Source: src, Destination: f.Dst, Type: typ,
			FileInfo: &files.ContentFileInfo{Owner: "root", Group: "root", Mode: mode, MTime: info.MTime}})
	}
	for _, s := range []struct {
		body string
		dst  *string
	}{{p.Scripts.PreInstall, &info.Scripts.PreInstall}, {p.Scripts.PostInstall, &info.Scripts.PostInstall},
		{p.Scripts.PreRemove, &info.Scripts.PreRemove}, {p.Scripts.PostRemove, &info.Scripts.PostRemove}} {
		if strings.TrimSpace(s.body) == "" {
			continue
		}
		src := filepath.Join(dir, "s"+strconv.Itoa(len(info.Contents))+strconv.Itoa(len(s.body)))
		body := s.body
		if !strings.HasPrefix(body, "#!") {
			body = "#!/bin/sh\nset -e\n" + body
		}
		if err := os.WriteFile(src, []byte(body), 0o700); err != nil {
			return nil, err
		}
		*s.dst = src
	}
	return nfpm.WithDefaults(info), nil
}

// Write writes the package to w.
func (p Package) Write(w io.Writer) error {
	if err := p.check(); err != nil {
		return err
	}
	pk, err := p.packager()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "cordon-pkg-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	info, err := p.info(dir)
	if err != nil {
		return err
	}
	// The formats themselves require MD5 (dpkg's md5sums, rpm's payload
	// digest) and SHA-1 (rpm's header digest) beside their SHA-256
	// digests: file checksums that dpkg and rpm compare, which protect
	// nothing. A package's integrity is the SHA-256 the server records
	// (and the signed update command's). So they are let through here,
	// and only here, when the process enforces fips140=only; in the
	// FIPS build's default fips140=on they are allowed anyway.
	fips140.WithoutEnforcement(func() { err = pk.Package(info, w) })
	if err != nil {
		return fmt.Errorf("packaging %s %s: %w", p.Name, p.Format, err)
	}
	return nil
}

// FileName is the package's conventional file name, e.g.
// cordon-agent_1.2.3_amd64.deb or cordon-agent-1.2.3-1.x86_64.rpm.
func (p Package) FileName() string {
	pk, err := p.packager()
	if err != nil {
		return p.Name + "-" + p.Version + "." + p.Format
	}
	info := &nfpm.Info{Name: p.Name, Arch: p.Arch, Platform: "linux", Version: p.Version, VersionSchema: "none"}
	if p.Format == "rpm" {
		info.Release = "1"
	}
	return pk.ConventionalFileName(info)
}

// mtime is the time stamped on every file and in the changelog:
// SOURCE_DATE_EPOCH when set (reproducible builds), else a fixed date, so
// two builds of one version are byte for byte the same.
func mtime() time.Time {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return time.Unix(n, 0).UTC()
		}
	}
	return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
}
