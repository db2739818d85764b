// Package agentpkg builds enrollment packages for IT: an agent package
// (.deb or .rpm for Linux, a .zip for macOS and Windows) with the
// server's enrollment URL, its root CA fingerprint and a new multi-use
// enrollment token baked in as protocol.EnrollFile, so that installing
// it enrolls the machine. The CLI (server.Admin), the API and the
// console all build through Builder.Build, which creates the token and
// audits the build in one transaction.
package agentpkg

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"time"

	"github.com/cordon-mdm/cordon/enroll"
	"github.com/cordon-mdm/cordon/internal/input"
	"github.com/cordon-mdm/cordon/internal/timefmt"
	"github.com/cordon-mdm/cordon/packaging"
	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/store"
)

// ActionBuilt is the audit action of a package build.
const ActionBuilt = "agent_package.built"

// ErrNoBuild is a platform the server holds no agent build for.
var ErrNoBuild = errors.New("no agent build for this platform")

// AgentBuilds gives the agent binary a package carries: the newest
// release the server keeps for goos/goarch (ErrNoBuild, wrapped or not,
// when it keeps none).
type AgentBuilds interface {
	LatestAgentBuild(ctx context.Context, goos, goarch string) (version string, binary []byte, err error)
}

// Tokens mints enrollment tokens under enroll's rules without storing
// them (enroll.Service).
type Tokens interface {
	MintToken(req enroll.TokenRequest, actor string) (string, enroll.Token, error)
}

// Store stores the token and the audit entry in one transaction.
type Store interface {
	InTx(ctx context.Context, fn func(tx *store.Store) error) error
}

// Auditor writes audit entries inside a transaction.
type Auditor interface {
	RecordTx(ctx context.Context, tx audit.Appender, e audit.Entry) error
}

// Request asks for one package. The edges fill absent fields with the
// Default* values; what is present is checked as given.
type Request struct {
	OS, Arch, Format string
	TokenUses        int
	TTL              time.Duration
	Owner            string
}

// Defaults of a Request's absent fields.
const (
	DefaultTokenUses = 1
	DefaultTTL       = 72 * time.Hour
)

// Package is a built package, shown (downloaded) once: it holds a token.
type Package struct {
	FileName    string
	ContentType string
	Body        []byte
	// TokenID names the baked-in token (never its secret), ExpiresAt its
	// end, AgentVersion the binary's release.
	TokenID      string
	ExpiresAt    time.Time
	AgentVersion string
	SHA256       string
}

// Builder builds packages for one server.
type Builder struct {
	tokens      Tokens
	store       Store
	audit       Auditor
	builds      AgentBuilds
	server      string
	fingerprint string
	log         *slog.Logger
}

// Option configures a Builder.
type Option func(*Builder)

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(b *Builder) { b.log = l } }

// New returns a Builder whose packages enroll against server (https://
// HOST:PORT of the console listener) pinning the root CA fingerprint.
// Both are checked here: a package pointing nowhere is refused before a
// token is made for it.
func New(tokens Tokens, st Store, auditor Auditor, builds AgentBuilds, server, fingerprint string, opts ...Option) (*Builder, error) {
	f := protocol.EnrollFile{Server: server, CAFingerprint: fingerprint, Token: "x"}
	if err := f.Check(); err != nil {
		return nil, fmt.Errorf("agent packages: %w", err)
	}
	b := &Builder{tokens: tokens, store: st, audit: auditor, builds: builds, server: server, fingerprint: fingerprint,
		log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(b)
	}
	return b, nil
}

// Server is the enrollment URL packages carry.
func (b *Builder) Server() string { return b.server }

// Check validates a Request's platform and format; the token's fields
// are enroll's to judge.
func (r Request) Check() error {
	switch r.OS {
	case "linux", "darwin", "windows":
	default:
		return input.Errorf("os", "must be linux, darwin or windows, got %q", input.Clip(r.OS, 32))
	}
	if r.Arch != "amd64" && r.Arch != "arm64" {
		return input.Errorf("arch", "must be amd64 or arm64, got %q", input.Clip(r.Arch, 32))
	}
	switch {
	case r.OS == "linux" && r.Format != "deb" && r.Format != "rpm":
		return input.Errorf("format", "a Linux package is deb or rpm, got %q", input.Clip(r.Format, 32))
	case r.OS != "linux" && r.Format != "zip":
		return input.Errorf("format", "a %s package is a zip, got %q", r.OS, input.Clip(r.Format, 32))
	}
	return nil
}

// versionRE is what deb and rpm both accept as a version.
var versionRE = regexp.MustCompile(`^[0-9][0-9A-Za-z.+~]{0,63}$`)

// Build makes the package for req: a new token of purpose
// enroll.PurposeAgentPackage, the package around it, then the token's
// row and the audit entries in one transaction. Nothing is returned,
// and the token does not exist, unless both were written.
func (b *Builder) Build(ctx context.Context, req Request, actor, source string) (*Package, error) {
	if err := req.Check(); err != nil {
		return nil, err
	}
	text, tok, err := b.tokens.MintToken(enroll.TokenRequest{TTL: req.TTL, Uses: req.TokenUses, Owner: req.Owner,
		Purpose: enroll.PurposeAgentPackage}, actor)
	if err != nil {
		return nil, err
	}
	version, binary, err := b.builds.LatestAgentBuild(ctx, req.OS, req.Arch)
	if err != nil {
		if errors.Is(err, ErrNoBuild) {
			return nil, fmt.Errorf("%w: %s/%s (add one with cordon-server agent-release add)", ErrNoBuild, req.OS, req.Arch)
		}
		return nil, fmt.Errorf("agent build %s/%s: %w", req.OS, req.Arch, err)
	}
	// A release's own version (v1.4.0, 1.4.0-3-gabc) as deb and rpm take it.
	version = packaging.CleanVersion(version)
	if !versionRE.MatchString(version) {
		return nil, input.Errorf("agent_version", "must start with a digit and hold only letters, digits and . + ~ (at most 64), got %q", input.Clip(version, 64))
	}
	if err := CheckBinary(binary, req.OS, req.Arch); err != nil {
		return nil, err
	}
	file, err := json.MarshalIndent(protocol.EnrollFile{Server: b.server, CAFingerprint: b.fingerprint, Token: text}, "", "  ")
	if err != nil {
		return nil, err
	}
	file = append(file, '\n')
	pkg, err := assemble(req, version, binary, file, tok.ID)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(pkg.Body)
	pkg.TokenID, pkg.ExpiresAt, pkg.AgentVersion, pkg.SHA256 = tok.ID, tok.ExpiresAt, version, hex.EncodeToString(sum[:])
	err = b.store.InTx(ctx, func(tx *store.Store) error {
		if err := tx.CreateToken(ctx, &store.EnrollmentToken{ID: tok.ID, Hash: tok.Hash, ExpiresAt: tok.ExpiresAt, Uses: tok.Uses,
			UsesLeft: tok.Uses, Owner: tok.Owner, CreatedBy: tok.CreatedBy, CreatedAt: tok.CreatedAt, Purpose: tok.Purpose}); err != nil {
			return err
		}
		if err := b.audit.RecordTx(ctx, tx, audit.Entry(enroll.TokenCreated(tok, actor, source))); err != nil {
			return err
		}
		return b.audit.RecordTx(ctx, tx, audit.Entry{Actor: actor, Source: source, Action: ActionBuilt,
			Target: "token:" + tok.ID, Outcome: audit.Success, Details: map[string]string{
				"os": req.OS, "arch": req.Arch, "format": req.Format, "token_id": tok.ID, "token_uses": fmt.Sprint(tok.Uses),
				"ttl": req.TTL.String(), "expires_at": timefmt.JSON(tok.ExpiresAt), "owner": tok.Owner,
				"agent_version": version, "server": b.server, "file": pkg.FileName, "sha256": pkg.SHA256}})
	})
	if err != nil {
		return nil, err
	}
	b.log.Info("agent package built", "os", req.OS, "arch", req.Arch, "format", req.Format, "token_id", tok.ID,
		"uses", tok.Uses, "expires_at", tok.ExpiresAt, "actor", actor)
	return pkg, nil
}

// MaxBinary bounds an agent binary read from a file.
const MaxBinary = 256 << 20

// FileBuild is one agent binary named by path and version, for
// `cordon-server package agent --agent-binary FILE --agent-version V`:
// whatever platform is asked, Build checks the binary is for it.
type FileBuild struct{ Path, Version string }

// LatestAgentBuild reads the file.
func (f FileBuild) LatestAgentBuild(_ context.Context, _, _ string) (string, []byte, error) {
	fh, err := os.Open(f.Path)
	if err != nil {
		return "", nil, err
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, MaxBinary+1))
	if err != nil {
		return "", nil, fmt.Errorf("%s: %w", f.Path, err)
	}
	if len(b) > MaxBinary {
		return "", nil, fmt.Errorf("%s: larger than %d MiB: not an agent binary", f.Path, MaxBinary>>20)
	}
	return f.Version, b, nil
}

// NoBuilds is the AgentBuilds of a server that keeps no agent releases:
// every platform is ErrNoBuild.
type NoBuilds struct{}

// LatestAgentBuild answers ErrNoBuild.
func (NoBuilds) LatestAgentBuild(context.Context, string, string) (string, []byte, error) {
	return "", nil, ErrNoBuild
}

// ParseTTL reads a token lifetime as the API's body and the console's
// form give it ("72h"); the range is Request.Check's.
func ParseTTL(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, input.Errorf("ttl", "not a duration such as 72h: %q", input.Clip(s, 32))
	}
	return d, nil
}

// ContentDisposition is the package's download header value.
func (p *Package) ContentDisposition() string {
	return mime.FormatMediaType("attachment", map[string]string{"filename": p.FileName})
}

// Download answers the package as a file to save, 201: the API and the
// console's form answer it alike. It holds a token, so it is never
// cached.
func (p *Package) Download(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", p.ContentType)
	h.Set("Content-Disposition", p.ContentDisposition())
	h.Set("Content-Length", strconv.Itoa(len(p.Body)))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Cordon-Token-Id", p.TokenID)
	h.Set("X-Cordon-Token-Expires-At", timefmt.JSON(p.ExpiresAt))
	h.Set("X-Cordon-Agent-Version", p.AgentVersion)
	h.Set("X-Cordon-Package-Sha256", p.SHA256)
	w.WriteHeader(http.StatusCreated)
	w.Write(p.Body)
}
