// Command pkgbuild is what `make package` runs: it builds the binaries
// (CGO_ENABLED=0, the version in ldflags) and writes into dist/ the agent
// and server .deb and .rpm for each Linux architecture, and the agent for
// macOS and Windows as an archive with an INSTALL text. It only wires
// internal/pkgbuild, which the packaging acceptance test also runs.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/cordon-mdm/cordon/internal/pkgbuild"
)

func main() {
	out := flag.String("out", "dist", "directory the packages are written to")
	version := flag.String("version", "", "version of the build (default: git describe)")
	fips := flag.String("fips", "", "GOFIPS140 module version to build on (empty: the default crypto)")
	flag.Parse()
	files, err := pkgbuild.Build(pkgbuild.Options{Out: *out, Version: *version, FIPS: *fips, Log: os.Stderr})
	if err != nil {
		fmt.Fprintln(os.Stderr, "pkgbuild:", err)
		os.Exit(1)
	}
	for _, f := range files {
		fmt.Println(f)
	}
}
