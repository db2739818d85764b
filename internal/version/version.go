// Package version carries the build's version, set with
// -ldflags "-X github.com/cordon-mdm/cordon/internal/version.Version=...".
package version

// Version of this build.
var Version = "0.1.0-dev"
