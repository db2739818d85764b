// Package enroll implements enrollment tokens and the server side of the
// enroll exchange: token + CSR + device facts in, certificate chain,
// gateway URL and command-signing key out. It depends on its callers only
// through the small interfaces below, so it sits below server/ and the
// agent's client never links it.
package enroll

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/cordon-mdm/cordon/attest"
	"github.com/cordon-mdm/cordon/internal/input"
	"github.com/cordon-mdm/cordon/internal/secret"
	"github.com/cordon-mdm/cordon/internal/timefmt"
	"github.com/cordon-mdm/cordon/pki/identity"
	"github.com/cordon-mdm/cordon/protocol"
)

// TokenPrefix begins every enrollment token.
const TokenPrefix = "cdt"

// Refusal reasons. Each is shown to the enrolling agent and audited.
var (
	ErrUnknownToken = errors.New("unknown enrollment token")
	ErrTokenExpired = errors.New("enrollment token expired")
	ErrTokenUsed    = errors.New("enrollment token already used")
)

// Token is an enrollment token as stored (hash only).
type Token struct {
	ID        string
	Hash      []byte
	ExpiresAt time.Time
	Uses      int
	Owner     string
	CreatedBy string
	CreatedAt time.Time
	// Purpose is "" or PurposeAgentPackage.
	Purpose string
}

// PurposeAgentPackage is a token baked into an agent package: shared by
// every machine the package is installed on, and said so in the trail.
const PurposeAgentPackage = "agent-package"

// Enrollment is what a successful exchange creates.
type Enrollment struct {
	DeviceID string
	Facts    protocol.DeviceFacts
	Owner    string
	Chain    []*x509.Certificate
	// KeyProtection is what the enrollment proved (attest.Level*), EKHash
	// the EK's SHA-256 for a TPM device.
	KeyProtection, EKHash string
	// TokenPurpose is the redeemed token's (Token.Purpose), for the trail.
	TokenPurpose string
}

// Store persists tokens, attestation challenges and enrollments.
type Store interface {
	CreateToken(ctx context.Context, t Token) error
	// Redeem consumes one use of the token and, in the same transaction,
	// the attestation challenge challengeID when it is not empty, and
	// records what issue returns. It returns ErrUnknownToken,
	// ErrTokenExpired, ErrTokenUsed or ErrAttestReplay (wrapped or not)
	// on refusal.
	Redeem(ctx context.Context, id string, hash []byte, challengeID string, issue func(Token) (*Enrollment, error)) error
	ChallengeStore
}

// Signer issues device certificates.
type Signer interface {
	SignDevice(ctx context.Context, csr *x509.CertificateRequest, deviceID string) ([]*x509.Certificate, error)
	Root() *x509.Certificate
}

// Event is one audit record.
type Event struct {
	Actor, Source, Action, Target, Outcome string
	Details                                map[string]string
}

// Auditor records events.
type Auditor interface {
	Record(ctx context.Context, e Event) error
}

// Service issues tokens and redeems them (POST /enroll, served by server/api).
type Service struct {
	store      Store
	challenges ChallengeStore
	ekRoots    *x509.CertPool
	signer     Signer
	audit      Auditor
	log        *slog.Logger
	gatewayURL string
	commandKey ed25519.PublicKey
	maxTTL     time.Duration
	now        func() time.Time
	reserved   []string
}

// WithServerNames names the server's own hosts: a CSR that names one of
// them claims the server's identity and is refused.
func WithServerNames(names ...string) Option {
	return func(s *Service) { s.reserved = append(s.reserved, names...) }
}

// Option configures a Service.
type Option func(*Service)

// WithGatewayURL sets the wss:// URL given to enrolled agents.
func WithGatewayURL(u string) Option { return func(s *Service) { s.gatewayURL = u } }

// WithCommandKey sets the command-signing public key given to agents.
func WithCommandKey(k ed25519.PublicKey) Option { return func(s *Service) { s.commandKey = k } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(s *Service) { s.log = l } }

// New returns a Service.
func New(st Store, signer Signer, auditor Auditor, opts ...Option) *Service {
	s := &Service{store: st, challenges: st, signer: signer, audit: auditor, log: slog.New(slog.DiscardHandler),
		maxTTL: 30 * 24 * time.Hour, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Token defaults, for the edges to fill in when a field is absent. A
// value that is present is taken as given: a zero is refused, never
// silently replaced by a default.
const (
	DefaultTTL  = 24 * time.Hour
	DefaultUses = 1
	MaxUses     = 10000
	MaxOwner    = 256
)

// TokenRequest asks for a new token. Every field is taken as given (the
// edges apply DefaultTTL and DefaultUses to absent fields).
type TokenRequest struct {
	TTL   time.Duration
	Uses  int
	Owner string
	// Purpose is "" or PurposeAgentPackage.
	Purpose string
}

// Event actions and the actor that created a token, for the audit trail.
const (
	ActionTokenCreated = "enrollment_token.created"
	ActionEnrolled     = "enrollment.succeeded"
	ActionRefused      = "enrollment.refused"
	ActionCertIssued   = "certificate.issued"
)

// ErrInvalid marks a bad token request.
var ErrInvalid = errors.New("invalid request")

// CreateToken makes a token and returns its text (shown once) and expiry.
func (s *Service) CreateToken(ctx context.Context, req TokenRequest, actor, source string) (string, time.Time, error) {
	text, t, err := s.MintToken(req, actor)
	if err != nil {
		return "", time.Time{}, err
	}
	if err := s.store.CreateToken(ctx, t); err != nil {
		return "", time.Time{}, err
	}
	if err := s.audit.Record(ctx, TokenCreated(t, actor, source)); err != nil {
		return "", time.Time{}, err
	}
	return text, t.ExpiresAt, nil
}

// MintToken checks req and makes a token, its text (shown once) and its
// row, without storing it: for a caller that stores the row in its own
// transaction with what else it records (an agent package's build). The
// rules of what a token may be live here alone.
func (s *Service) MintToken(req TokenRequest, actor string) (string, Token, error) {
	switch {
	case req.TTL < time.Minute || req.TTL > s.maxTTL:
		return "", Token{}, fmt.Errorf("%w: ttl must be between 1m and %v, got %v", ErrInvalid, s.maxTTL, req.TTL)
	case req.Uses < 1 || req.Uses > MaxUses:
		return "", Token{}, fmt.Errorf("%w: uses must be between 1 and %d, got %d", ErrInvalid, MaxUses, req.Uses)
	case req.Purpose != "" && req.Purpose != PurposeAgentPackage:
		return "", Token{}, fmt.Errorf("%w: unknown token purpose %q", ErrInvalid, req.Purpose)
	}
	if err := input.Text("owner", req.Owner, MaxOwner); err != nil {
		return "", Token{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	sec := secret.New(TokenPrefix)
	now := s.now().UTC()
	return sec.Text, Token{ID: sec.ID, Hash: sec.Hash, ExpiresAt: now.Add(req.TTL), Uses: req.Uses,
		Owner: req.Owner, CreatedBy: actor, CreatedAt: now, Purpose: req.Purpose}, nil
}

// TokenCreated is the audit event of t's creation. The token id (not
// the secret) identifies it in the trail.
func TokenCreated(t Token, actor, source string) Event {
	details := map[string]string{"expires_at": timefmt.JSON(t.ExpiresAt), "uses": fmt.Sprint(t.Uses), "owner": t.Owner}
	if t.Purpose != "" {
		details["purpose"] = t.Purpose
	}
	return Event{Actor: actor, Source: source, Action: ActionTokenCreated, Target: "token:" + t.ID, Outcome: "success", Details: details}
}

// Guess reports whether err is a token that did not redeem: what a
// guess limiter counts against its source (see server/ratelimit).
func Guess(err error) bool {
	return errors.Is(err, ErrUnknownToken) || errors.Is(err, ErrTokenExpired) || errors.Is(err, ErrTokenUsed)
}

var errInternal = errors.New("internal error")

// MaxRequestBytes bounds an enrollment request (a CSR and a few facts).
const MaxRequestBytes = 64 << 10

// ErrIdentityClaimed is a CSR that names an identity. A device's identity
// comes from the server alone; a CSR that claims one (another device's
// urn:uuid, the server's hostname, an IP) is an impersonation attempt and
// is refused, not quietly rewritten, so the trail shows it.
var ErrIdentityClaimed = errors.New("identity claimed in the certificate request")

// Enroll redeems the token of the request in body for a device
// certificate, for a device at source. Every refusal is audited and is
// one of this package's errors (or pki/identity's, for the CSR); the
// edge (server/api, POST /enroll) maps them to statuses.
func (s *Service) Enroll(ctx context.Context, body io.Reader, source string) (*protocol.EnrollResponse, error) {
	tokenID := ""
	refuse := func(err error) error { return s.refuse(ctx, source, tokenID, err) }
	var req protocol.EnrollRequest
	// One document, unknown fields refused, then req.Check: the path the
	// API and the agent channel use.
	if err := input.DecodeJSON(body, &req, MaxRequestBytes); err != nil {
		return nil, refuse(fmt.Errorf("malformed request: %w", err))
	}
	id, hash, err := secret.Parse(TokenPrefix, req.Token)
	if err != nil {
		return nil, refuse(ErrUnknownToken)
	}
	tokenID = id
	csr, err := identity.ParseCSR(req.CSR)
	if err != nil {
		return nil, refuse(err)
	}
	if err := identity.CheckDeviceCSR(csr); err != nil {
		return nil, refuse(err)
	}
	if err := s.checkClaims(csr, req.Facts.Hostname); err != nil {
		return nil, refuse(err)
	}
	level, ekHash, challengeID := attest.LevelSoftware, "", ""
	if req.Attestation != nil {
		c, err := s.verifyAttestation(ctx, id, req.Attestation, csr)
		if err != nil {
			return nil, refuse(err)
		}
		level, ekHash, challengeID = c.Level, c.EKHash, c.ID
	}
	deviceID := uuid.NewString()
	var enr *Enrollment
	err = s.store.Redeem(ctx, id, hash, challengeID, func(t Token) (*Enrollment, error) {
		chain, err := s.signer.SignDevice(ctx, csr, deviceID)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errInternal, err)
		}
		enr = &Enrollment{DeviceID: deviceID, Facts: req.Facts, Owner: t.Owner, Chain: chain, KeyProtection: level, EKHash: ekHash,
			TokenPurpose: t.Purpose}
		return enr, nil
	})
	if err != nil {
		if Guess(err) || errors.Is(err, ErrAttestReplay) {
			return nil, refuse(err)
		}
		s.log.Error("enrollment failed", "err", err)
		return nil, refuse(fmt.Errorf("%w: could not enroll", errInternal))
	}
	leaf := enr.Chain[0]
	details := map[string]string{"hostname": req.Facts.Hostname, "platform": req.Facts.Platform, "owner": enr.Owner,
		"key_protection": level}
	if enr.TokenPurpose != "" {
		details["token_purpose"] = enr.TokenPurpose
	}
	if level == attest.LevelUnverified {
		// Said plainly in the trail: nothing vouched for this EK.
		details["ek_sha256"] = ekHash
		details["ek_trust"] = "trusted on first use: no EK certificate was checked against a configured EK root"
	} else if ekHash != "" {
		details["ek_sha256"] = ekHash
	}
	for _, e := range []Event{
		{Actor: "token:" + id, Source: source, Action: ActionEnrolled, Target: "device:" + deviceID, Outcome: "success",
			Details: details},
		{Actor: "token:" + id, Source: source, Action: ActionCertIssued, Target: "device:" + deviceID, Outcome: "success",
			Details: map[string]string{"serial": identity.Serial(leaf.SerialNumber), "not_after": timefmt.JSON(leaf.NotAfter)}},
	} {
		if err := s.audit.Record(ctx, e); err != nil {
			s.log.Error("audit enrollment", "err", err)
		}
	}
	s.log.Info("device enrolled", "device_id", deviceID, "hostname", req.Facts.Hostname, "source", source, "key_protection", level)
	return &protocol.EnrollResponse{
		DeviceID:          deviceID,
		CertificateChain:  identity.EncodeChain(enr.Chain...),
		RootCA:            identity.EncodeChain(s.signer.Root()),
		GatewayURL:        s.gatewayURL,
		CommandSigningKey: base64.StdEncoding.EncodeToString(s.commandKey),
	}, nil
}

// refuse audits and logs a refused enrollment (or challenge) of token
// tokenID ("" when the request named none that parsed) and returns err.
func (s *Service) refuse(ctx context.Context, source, tokenID string, err error) error {
	target := "token:unknown"
	if tokenID != "" {
		target = "token:" + tokenID
	}
	if aerr := s.audit.Record(ctx, Event{Actor: "anonymous", Source: source, Action: ActionRefused,
		Target: target, Outcome: "denied", Details: map[string]string{"reason": err.Error()}}); aerr != nil {
		s.log.Error("audit enrollment refusal", "err", aerr)
	}
	s.log.Info("enrollment refused", "source", source, "token_id", tokenID, "reason", err)
	return err
}

// checkClaims refuses a CSR that claims an identity: any SAN, a subject
// beyond a common name, or a common name other than the device's own
// hostname; and a hostname that itself names an identity (a UUID, an IP,
// an email or URI, one of the server's names).
func (s *Service) checkClaims(csr *x509.CertificateRequest, hostname string) error {
	if err := identity.CheckNoClaims(csr, hostname); err != nil {
		return fmt.Errorf("%w: %w", ErrIdentityClaimed, err)
	}
	if cn := csr.Subject.CommonName; cn != "" {
		if what := identity.IdentityIn(cn, s.reserved...); what != "" {
			return fmt.Errorf("%w: %w: subject common name %q is %s", ErrIdentityClaimed, identity.ErrBadCSR, cn, what)
		}
	}
	return nil
}
