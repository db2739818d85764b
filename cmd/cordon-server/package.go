package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/cordon-mdm/cordon/internal/atomicfile"
	"github.com/cordon-mdm/cordon/server"
	"github.com/cordon-mdm/cordon/server/agentpkg"
)

// packageAgent is `cordon-server package agent`: an agent package with
// this server's enrollment URL, CA fingerprint and a new multi-use token.
func packageAgent(args []string, stdout io.Writer) error {
	fs := newFlags("package agent")
	goos := fs.String("os", "linux", "linux, darwin or windows")
	arch := fs.String("arch", "amd64", "amd64 or arm64")
	format := fs.String("format", "", "deb or rpm for Linux; zip for darwin and windows (the default there)")
	uses := fs.Int("token-uses", agentpkg.DefaultTokenUses, "how many machines the package may enroll")
	ttl := fs.Duration("ttl", agentpkg.DefaultTTL, "how long the package's token enrolls")
	owner := fs.String("owner", "", "email of the person the devices are for (optional)")
	out := fs.String("out", "", "where to write the package (default: its own name in the current directory); written 0600, it holds the token")
	srvURL := fs.String("server", "", "https://HOST:PORT agents enroll against (default: the console URL serve recorded in the data dir)")
	binary := fs.String("agent-binary", "", "the cordon-agent binary to package, built for --os/--arch (default: the newest agent release kept for them)")
	version := fs.String("agent-version", "", "that binary's version (as deb and rpm take it, e.g. 1.4.0)")
	return withAdmin(fs, args, func(ctx context.Context, adm *server.Admin) error {
		if *format == "" && *goos != "linux" {
			*format = "zip"
		}
		var builds agentpkg.AgentBuilds = agentpkg.FileBuild{Path: *binary, Version: *version}
		switch {
		case *binary == "" && *version == "":
			builds = adm.ReleaseBuilds()
		case *binary == "" || *version == "":
			return errors.New("--agent-binary and --agent-version go together (without both, the newest agent release kept for --os/--arch is packaged)")
		}
		pkg, err := adm.BuildAgentPackage(ctx, agentpkg.Request{OS: *goos, Arch: *arch, Format: *format, TokenUses: *uses, TTL: *ttl,
			Owner: *owner}, builds, *srvURL)
		if err != nil {
			return err
		}
		path := *out
		if path == "" {
			path = pkg.FileName
		}
		if err := atomicfile.Write(path, pkg.Body, 0o600); err != nil {
			return fmt.Errorf("the package was built and its token %s recorded, but not written: %w", pkg.TokenID, err)
		}
		fmt.Fprintf(stdout, "%s\ntoken %s enrolls up to %d machines until %s\n", path, pkg.TokenID, *uses, pkg.ExpiresAt.UTC().Format("2006-01-02 15:04 MST"))
		return nil
	})
}
