package version

import (
	"errors"
	"regexp"
	"strconv"
	"strings"
)

// semver is MAJOR.MINOR.PATCH with an optional -prerelease (dot-separated
// [0-9A-Za-z-] identifiers) and +build; an optional leading v. It is what
// an agent build is labelled with (agent-release add --version) and what
// rollouts compare, so a downgrade is told from an upgrade.
var semver = regexp.MustCompile(`^v?(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})` +
	`(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$`)

// ErrNotSemver is Check's answer for a version that is not semver-like.
var ErrNotSemver = errors.New("version must look like 1.2.3, 1.2.3-rc.1 or v1.2.3")

// Check reports whether v is a version Compare can order (at most 64
// characters).
func Check(v string) error {
	if len(v) > 64 || !semver.MatchString(v) {
		return ErrNotSemver
	}
	return nil
}

// Compare orders two versions by semver precedence: -1, 0 or +1. A
// version that is not semver-like sorts below every one that is (an
// agent built without a version, "0.1.0-dev", is still semver), and two
// such compare as strings.
func Compare(a, b string) int {
	ma, mb := semver.FindStringSubmatch(a), semver.FindStringSubmatch(b)
	switch {
	case ma == nil && mb == nil:
		return strings.Compare(a, b)
	case ma == nil:
		return -1
	case mb == nil:
		return 1
	}
	for i := 1; i <= 3; i++ {
		x, _ := strconv.Atoi(ma[i])
		y, _ := strconv.Atoi(mb[i])
		if x != y {
			return cmpInt(x, y)
		}
	}
	return comparePre(ma[4], mb[4])
}

// comparePre orders pre-release tags: none is above any; identifiers
// compare numerically when both are numbers, else as strings; numbers
// sort below words; a longer list of equal leading ones is above.
func comparePre(a, b string) int {
	switch {
	case a == b:
		return 0
	case a == "":
		return 1
	case b == "":
		return -1
	}
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(pa) && i < len(pb); i++ {
		x, errx := strconv.Atoi(pa[i])
		y, erry := strconv.Atoi(pb[i])
		switch {
		case errx == nil && erry == nil:
			if x != y {
				return cmpInt(x, y)
			}
		case errx == nil:
			return -1
		case erry == nil:
			return 1
		default:
			if c := strings.Compare(pa[i], pb[i]); c != 0 {
				return c
			}
		}
	}
	return cmpInt(len(pa), len(pb))
}

func cmpInt(x, y int) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}
