package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestAgentLinksNoServerCode keeps the agent small and its attack surface
// narrow: no database, no CA, no server package may end up in it.
func TestAgentLinksNoServerCode(t *testing.T) {
	for _, target := range []string{"linux/amd64", "darwin/arm64", "windows/amd64", "android/arm64"} {
		goos, goarch, _ := strings.Cut(target, "/")
		cmd := exec.Command("go", "list", "-deps", ".")
		cmd.Env = append(cmd.Environ(), "GOOS="+goos, "GOARCH="+goarch, "CGO_ENABLED=0")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list (%s): %v", target, err)
		}
		for _, dep := range strings.Fields(string(out)) {
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
