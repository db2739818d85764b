package main

import (
	"testing"

	"github.com/cordon-mdm/cordon/internal/linkcheck"
)

// TestCordonctlCryptoIsAllInTheModule: cordonctl's TLS and pinning run
// entirely on the standard library, hence on the FIPS module in FIPS builds.
func TestCordonctlCryptoIsAllInTheModule(t *testing.T) {
	if mods := linkcheck.CryptoModules(linkcheck.Deps(t, ".", "", "")); len(mods) > 0 {
		t.Errorf("cordonctl links cryptography outside the standard library: %v", mods)
	}
}
