package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/cordon-mdm/cordon/enroll"
	"github.com/cordon-mdm/cordon/internal/atomicfile"
	"github.com/cordon-mdm/cordon/pki"
	"github.com/cordon-mdm/cordon/server/agentpkg"
	"github.com/cordon-mdm/cordon/server/releases"
	"github.com/cordon-mdm/cordon/server/store"
)

// enrollURLFile, in the data dir, is the URL agents enroll against, as
// the last serve computed it: `cordon-server package agent` runs beside
// serve without its listener or flags, and bakes this into packages.
const enrollURLFile = "enroll.url"

// WithAgentBuilds gives agent packages their binaries. By default they
// are the agent releases the server keeps (agent-release add).
func WithAgentBuilds(b agentpkg.AgentBuilds) Option {
	return func(c *config) error { c.agentBuilds = b; return nil }
}

// EnrollURL is https://HOST:PORT of the console listener as agents reach
// it: the first --hostname (or the listen host) and the bound port.
func (s *Server) EnrollURL() string {
	_, port, _ := net.SplitHostPort(s.consoleLn.Addr().String())
	return "https://" + net.JoinHostPort(s.publicHost(s.cfg.listen), port)
}

// agentPackages is the package builder of the API and the console, and
// records the enrollment URL for the host command.
func (s *Server) agentPackages(enr *enroll.Service) (*agentpkg.Builder, error) {
	if err := atomicfile.Write(filepath.Join(s.cfg.dataDir, enrollURLFile), []byte(s.EnrollURL()+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("enrollment URL: %w", err)
	}
	builds := s.cfg.agentBuilds
	if builds == nil {
		builds = releaseBuilds{s.Releases}
	}
	return agentpkg.New(enr, s.Store, s.Audit, builds, s.EnrollURL(), s.CA.RootFingerprint(), agentpkg.WithLogger(s.log))
}

// ErrNoEnrollURL is a data dir serve never started on, asked for a
// package without --server.
var ErrNoEnrollURL = errors.New("the enrollment URL is unknown: start serve once on this data dir (with --hostname as agents reach it), or pass --server https://HOST:PORT")

// BuildAgentPackage builds an agent package on the server host, its
// binary from builds, enrolling against serverURL (empty: what serve
// recorded) and pinning this data dir's root CA.
func (a *Admin) BuildAgentPackage(ctx context.Context, req agentpkg.Request, builds agentpkg.AgentBuilds, serverURL string) (*agentpkg.Package, error) {
	if serverURL == "" {
		b, err := os.ReadFile(filepath.Join(a.dataDir, enrollURLFile))
		if errors.Is(err, os.ErrNotExist) {
			return nil, ErrNoEnrollURL
		}
		if err != nil {
			return nil, err
		}
		serverURL = strings.TrimSpace(string(b))
	}
	fp, err := pki.ReadRootFingerprint(a.dataDir)
	if err != nil {
		return nil, fmt.Errorf("root CA fingerprint (has serve started once on %s?): %w", a.dataDir, err)
	}
	b, err := agentpkg.New(a.tokens, a.Store, a.Audit, builds, serverURL, fp)
	if err != nil {
		return nil, err
	}
	return b.Build(ctx, req, a.actor, "local")
}

// ReleaseBuilds are the agent releases kept in this data dir, as
// `package agent` takes them when no --agent-binary is given.
func (a *Admin) ReleaseBuilds() agentpkg.AgentBuilds { return releaseBuilds{a.releases()} }

// releaseBuilds gives a package the newest agent release kept for its
// platform. The file is checked against the SHA-256 recorded when it was
// added: a package carries the binary onto machines with no later check,
// unlike an update, which the agent checks itself.
type releaseBuilds struct{ r *releases.Service }

func (b releaseBuilds) LatestAgentBuild(ctx context.Context, goos, goarch string) (string, []byte, error) {
	rel, err := b.r.LatestAgentRelease(ctx, goos, goarch)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil, fmt.Errorf("%w: %s/%s (add one with cordon-server agent-release add)", agentpkg.ErrNoBuild, goos, goarch)
	}
	if err != nil {
		return "", nil, err
	}
	f, _, err := b.r.Open(ctx, rel.SHA256)
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	body, err := io.ReadAll(io.LimitReader(f, rel.Size+1))
	if err != nil {
		return "", nil, err
	}
	if sum := sha256.Sum256(body); hex.EncodeToString(sum[:]) != rel.SHA256 {
		return "", nil, fmt.Errorf("agent release %s %s/%s: the stored file no longer matches its SHA-256; add the build again", rel.Version, goos, goarch)
	}
	// An update may carry any build (the agent checks it and rolls back);
	// a package must carry one that runs there, so a kept file that is
	// not such an executable is the server's conflict, not the caller's
	// bad input.
	if err := agentpkg.CheckBinary(body, goos, goarch); err != nil {
		return "", nil, fmt.Errorf("%w: the newest agent release kept for %s/%s (%s) is not usable in a package: %v", agentpkg.ErrNoBuild, goos, goarch, rel.Version, err)
	}
	return rel.Version, body, nil
}
