// Package version carries the build's version, set with
// -ldflags "-X github.com/cordon-mdm/cordon/internal/version.Version=...",
// and prints it with the cryptographic module the binary runs on.
package version

import (
	"fmt"
	"io"
	"runtime"

	"github.com/cordon-mdm/cordon/internal/fips"
)

// Version of this build.
var Version = "0.1.0-dev"

// Fprint writes what every binary's `version` command prints: the
// program's version and Go release, then the FIPS 140-3 module status an
// auditor checks against the module's certificate.
func Fprint(w io.Writer, program string) {
	fmt.Fprintf(w, "%s %s (%s %s/%s)\n", program, Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	for _, l := range fips.Current().Lines() {
		fmt.Fprintln(w, l)
	}
}
