// Package applescep is Cordon's SCEP endpoint for Apple devices: the
// SCEP payload of an enrollment profile gets the device's MDM identity
// certificate from Cordon's CA here, with a one-time challenge tied to
// the enrollment token the profile was made for.
//
// It speaks SCEP itself over smallstep's scep and pkcs7 packages rather
// than through micromdm/scep's server, whose capabilities are fixed at
// SHA-1 and DES3 and whose replies are signed with SHA-1: here every
// reply is signed with SHA-256 and encrypted with AES, and only AES and
// SHA-256 are advertised.
package applescep

import (
	"context"
	"crypto/fips140"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/smallstep/pkcs7"

	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/store"
)

// Audit actions.
const (
	ActionChallengeCreated = "scep_challenge.created"
	ActionIssued           = "scep.certificate_issued"
	ActionRefused          = "scep.refused"
)

// Signer is what the service needs of Cordon's CA.
type Signer interface {
	SignAppleIdentity(ctx context.Context, csr *x509.CertificateRequest, deviceID string) ([]*x509.Certificate, error)
	Intermediate() *x509.Certificate
	Root() *x509.Certificate
}

// Challenges keeps the one-time challenges.
type Challenges interface {
	CreateScepChallenge(ctx context.Context, tokenID string, hash []byte, now time.Time) (*store.ScepChallenge, error)
	UseScepChallenge(ctx context.Context, hash []byte, deviceID string, now time.Time) (*store.ScepChallenge, error)
}

// Auditor records what the service did and refused.
type Auditor interface {
	Record(ctx context.Context, e audit.Entry) error
}

// Service issues Apple identity certificates over SCEP.
type Service struct {
	ca    Signer
	chal  Challenges
	audit Auditor
	ra    func() (*RA, error)
	log   *slog.Logger
	now   func() time.Time
}

// Option configures a Service.
type Option func(*Service)

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(s *Service) { s.log = l } }

// WithClock sets the clock challenges expire by.
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

var pkcs7Setup sync.Once

// New returns the service, with its RA from ra (RAInDir). It sets smallstep/pkcs7's process-wide
// encryption choices, the only way that package takes them: AES-256-CBC
// for content (its default is DES), and under fips140=only RSA-OAEP with
// SHA-256 for key transport (pkcs7's OAEP hash defaults to SHA-256), since PKCS#1 v1.5 encryption is refused
// there (outside it, v1.5, which Apple's SCEP clients expect).
func New(ca Signer, chal Challenges, au Auditor, ra func() (*RA, error), opts ...Option) *Service {
	pkcs7Setup.Do(func() {
		pkcs7.ContentEncryptionAlgorithm = pkcs7.EncryptionAlgorithmAES256CBC
		if fips140.Enforced() {
			pkcs7.KeyEncryptionAlgorithm = pkcs7.OIDEncryptionAlgorithmRSAESOAEP
		}
	})
	s := &Service{ca: ca, chal: chal, audit: au, ra: ra, log: slog.New(slog.DiscardHandler), now: time.Now}
	for _, o := range opts {
		o(s)
	}
	return s
}

// MintChallenge makes a one-time SCEP challenge for enrollment token
// tokenID, for the enrollment profile made for it. Only its SHA-256 is
// stored; the challenge expires with the token. An unknown token is
// store.ErrTokenBad, an expired one store.ErrTokenExp.
func (s *Service) MintChallenge(ctx context.Context, tokenID, actor string) (string, error) {
	challenge := rand.Text()
	h := sha256.Sum256([]byte(challenge))
	c, err := s.chal.CreateScepChallenge(ctx, tokenID, h[:], s.now())
	if err != nil {
		return "", fmt.Errorf("SCEP challenge for token %s: %w", tokenID, err)
	}
	if err := s.audit.Record(ctx, audit.Entry{Actor: actor, Source: "local", Action: ActionChallengeCreated,
		Target: "token:" + tokenID, Outcome: "success",
		Details: map[string]string{"owner": c.Owner, "expires_at": c.ExpiresAt.UTC().Format(time.RFC3339)}}); err != nil {
		return "", err
	}
	return challenge, nil
}

// Issued is the outcome of one signed PKCSReq.
type Issued struct {
	DeviceID, TokenID, Owner string
	Chain                    []*x509.Certificate
}

// sign uses up the challenge of a decrypted request and has the CA sign
// its CSR for a new device id. The challenge is spent before the CA
// signs: a request that then fails cannot be replayed either.
func (s *Service) sign(ctx context.Context, csr *x509.CertificateRequest, challenge, source string) (*Issued, error) {
	deviceID := uuid.NewString()
	h := sha256.Sum256([]byte(challenge))
	c, err := s.chal.UseScepChallenge(ctx, h[:], deviceID, s.now())
	if err != nil {
		s.refused(ctx, source, "token:unknown", err)
		return nil, err
	}
	chain, err := s.ca.SignAppleIdentity(ctx, csr, deviceID)
	if err != nil {
		s.refused(ctx, source, "token:"+c.TokenID, err)
		return nil, err
	}
	if err := s.audit.Record(ctx, audit.Entry{Actor: "token:" + c.TokenID, Source: source, Action: ActionIssued,
		Target: "device:" + deviceID, Outcome: "success",
		Details: map[string]string{"owner": c.Owner, "serial": chain[0].SerialNumber.String()}}); err != nil {
		// AU-5: no certificate goes out unrecorded.
		return nil, err
	}
	return &Issued{DeviceID: deviceID, TokenID: c.TokenID, Owner: c.Owner, Chain: chain}, nil
}

func (s *Service) refused(ctx context.Context, source, target string, reason error) {
	if err := s.audit.Record(ctx, audit.Entry{Actor: "anonymous", Source: source, Action: ActionRefused,
		Target: target, Outcome: "denied", Details: map[string]string{"reason": reason.Error()}}); err != nil {
		s.log.Error("audit SCEP refusal", "err", err)
	}
	level := slog.LevelInfo
	if errors.Is(reason, store.ErrTokenUsed) {
		level = slog.LevelWarn // a profile replayed: worth a look
	}
	s.log.Log(ctx, level, "SCEP request refused", "source", source, "reason", reason)
}
