package main

import (
	"strings"
	"testing"

	"github.com/cordon-mdm/cordon/internal/linkcheck"
)

var agentTargets = []string{"linux/amd64", "darwin/arm64", "windows/amd64", "android/arm64"}

// TestAgentLinksNoServerCode keeps the agent small and its attack surface
// narrow: no database, no CA, no server package may end up in it.
func TestAgentLinksNoServerCode(t *testing.T) {
	for _, target := range agentTargets {
		goos, goarch, _ := strings.Cut(target, "/")
		for _, p := range linkcheck.Deps(t, ".", goos, goarch) {
			dep := p.ImportPath
			banned := strings.HasPrefix(dep, "gorm.io/") ||
				strings.HasPrefix(dep, "github.com/smallstep/certificates/") ||
				strings.HasPrefix(dep, "github.com/cordon-mdm/cordon/server") ||
				dep == "github.com/cordon-mdm/cordon/enroll" ||
				dep == "github.com/cordon-mdm/cordon/pki" // the CA; pki/identity is fine
			if banned {
				t.Errorf("%s agent links %s", target, dep)
			}
		}
	}
}

// TestAgentCryptoIsAllInTheModule: every cryptographic operation of the
// agent goes through Go's standard library, so a FIPS build runs all of
// it on the FIPS 140-3 module and fips140=only polices all of it.
func TestAgentCryptoIsAllInTheModule(t *testing.T) {
	for _, target := range agentTargets {
		goos, goarch, _ := strings.Cut(target, "/")
		if mods := linkcheck.CryptoModules(linkcheck.Deps(t, ".", goos, goarch)); len(mods) > 0 {
			t.Errorf("%s agent links cryptography outside the standard library: %v", target, mods)
		}
	}
}
