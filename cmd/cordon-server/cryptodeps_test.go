package main

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/cordon-mdm/cordon/internal/linkcheck"
)

// TestServerCryptoOutsideTheModuleIsDocumented: go's fips140=only mode
// cannot see cryptography implemented outside the standard library, so
// each module that brings some into cordon-server must be listed, with
// why it is outside the boundary, in the README's FIPS table. A new one
// fails here until someone reviews and documents it; a stale row fails
// too, so the table stays true.
func TestServerCryptoOutsideTheModuleIsDocumented(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "### Cryptography outside the module\n")
	if !ok {
		t.Fatal("README has no \"Cryptography outside the module\" section")
	}
	section, _, _ = strings.Cut(section, "\n#")
	var documented []string
	for _, m := range regexp.MustCompile("(?m)^\\| `([^`]+)` \\|").FindAllStringSubmatch(section, -1) {
		documented = append(documented, string(m[1]))
	}
	linked := linkcheck.CryptoModules(linkcheck.Deps(t, ".", "", ""))
	for _, m := range linked {
		if !slices.Contains(documented, m) {
			t.Errorf("cordon-server links cryptography from %s, which the README's FIPS table does not account for", m)
		}
	}
	for _, m := range documented {
		if !slices.Contains(linked, m) {
			t.Errorf("the README's FIPS table lists %s, which cordon-server no longer links", m)
		}
	}
}
