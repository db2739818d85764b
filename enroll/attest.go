package enroll

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/google/uuid"

	"github.com/cordon-mdm/cordon/attest"
	"github.com/cordon-mdm/cordon/internal/input"
	"github.com/cordon-mdm/cordon/internal/secret"
	"github.com/cordon-mdm/cordon/internal/timefmt"
	"github.com/cordon-mdm/cordon/protocol"
)

// Attestation refusals. Every failed check of the TPM evidence is
// ErrAttestation, wrapping attest's error that names the check (AK not
// bound to the EK, wrong nonce, certification of a different key, ...).
var (
	ErrAttestation = errors.New("attestation refused")
	// ErrAttestReplay is an answer to a challenge that is unknown,
	// another token's, expired or used: a replayed attestation.
	ErrAttestReplay = fmt.Errorf("%w: the challenge is unknown, expired or already used (replay)", ErrAttestation)
)

// ChallengeTTL is how long a device has to answer a challenge: two TPM
// operations and a request.
const ChallengeTTL = 5 * time.Minute

// Challenge is an attestation challenge as stored: the credential
// secret's SHA-256, never the secret.
type Challenge struct {
	ID, TokenID                 string
	SecretHash, Nonce, AKPublic []byte
	// Level is what a correct answer earns (attest.LevelAttested or
	// LevelUnverified); EKHash the EK public key's SHA-256 (hex).
	Level, EKHash        string
	ExpiresAt, CreatedAt time.Time
	UsedAt               *time.Time
}

// ChallengeStore keeps challenges. CreateChallenge checks the token as
// Redeem would (ErrUnknownToken, ErrTokenExpired, ErrTokenUsed) without
// consuming it; Challenge answers ErrAttestReplay for an unknown id;
// BurnChallenge marks one used after a refused answer.
type ChallengeStore interface {
	CreateChallenge(ctx context.Context, tokenID string, tokenHash []byte, c *Challenge) error
	Challenge(ctx context.Context, id string) (*Challenge, error)
	BurnChallenge(ctx context.Context, id string) error
}

// WithEKRoots sets the TPM manufacturers' EK roots: an EK certificate
// that chains to one makes the device tpm-attested. Without roots, TPM
// devices are tpm-unverified (their EK trusted on first use).
func WithEKRoots(p *x509.CertPool) Option { return func(s *Service) { s.ekRoots = p } }

// Challenge serves POST /enroll/challenge: it checks a TPM's EK and AK
// and returns a credential only that TPM can activate, and a nonce for
// the certification of its identity key. Refusals are audited as
// Enroll's are.
func (s *Service) Challenge(ctx context.Context, body io.Reader, source string) (*protocol.ChallengeResponse, error) {
	var req protocol.ChallengeRequest
	if err := input.DecodeJSON(body, &req, MaxRequestBytes); err != nil {
		return nil, s.refuse(ctx, source, "", fmt.Errorf("malformed request: %w", err))
	}
	id, hash, err := secret.Parse(TokenPrefix, req.Token)
	if err != nil {
		return nil, s.refuse(ctx, source, "", ErrUnknownToken)
	}
	akArea, _, err := attest.CheckAK(req.AKPublic)
	if err != nil {
		return nil, s.refuse(ctx, source, id, fmt.Errorf("%w: %w", ErrAttestation, err))
	}
	ek, err := attest.CheckEK(req.EKPublic, req.EKCert, s.ekRoots)
	if err != nil {
		return nil, s.refuse(ctx, source, id, fmt.Errorf("%w: %w", ErrAttestation, err))
	}
	name, err := attest.Name(akArea)
	if err != nil {
		return nil, s.refuse(ctx, source, id, fmt.Errorf("%w: %w", ErrAttestation, err))
	}
	sec, nonce := make([]byte, 32), make([]byte, 32)
	rand.Read(sec)
	rand.Read(nonce)
	cred, enc, err := attest.MakeCredential(rand.Reader, ek.Public, name, sec)
	if err != nil {
		return nil, s.refuse(ctx, source, id, fmt.Errorf("%w: %w", ErrAttestation, err))
	}
	level := attest.LevelUnverified
	if ek.Certified {
		level = attest.LevelAttested
	}
	now := s.now().UTC()
	sum := sha256.Sum256(sec)
	c := &Challenge{ID: uuid.NewString(), SecretHash: sum[:], Nonce: nonce, AKPublic: req.AKPublic,
		Level: level, EKHash: ek.Hash, ExpiresAt: now.Add(ChallengeTTL), CreatedAt: now}
	if err := s.challenges.CreateChallenge(ctx, id, hash, c); err != nil {
		if !Guess(err) {
			s.log.Error("attestation challenge", "err", err)
			err = fmt.Errorf("%w: could not make a challenge", errInternal)
		}
		return nil, s.refuse(ctx, source, id, err)
	}
	s.log.Info("attestation challenge", "source", source, "token_id", id, "challenge", c.ID, "level", level)
	return &protocol.ChallengeResponse{ChallengeID: c.ID, Credential: cred, Secret: enc, Nonce: nonce,
		ExpiresAt: timefmt.JSON(c.ExpiresAt)}, nil
}

// verifyAttestation checks an answer against its challenge (for the
// token tokenID) and the CSR's key; it returns the challenge when every
// check passed. A refused answer burns its challenge: it is single use
// whether or not it succeeded.
func (s *Service) verifyAttestation(ctx context.Context, tokenID string, a *protocol.Attestation, csr *x509.CertificateRequest) (*Challenge, error) {
	c, err := s.challenges.Challenge(ctx, a.ChallengeID)
	if errors.Is(err, ErrAttestReplay) {
		return nil, err
	}
	if err != nil {
		s.log.Error("attestation challenge", "err", err)
		return nil, fmt.Errorf("%w: could not read the challenge", errInternal)
	}
	switch {
	case c.TokenID != tokenID:
		return nil, ErrAttestReplay
	case c.UsedAt != nil:
		return nil, ErrAttestReplay
	case !s.now().Before(c.ExpiresAt):
		return nil, fmt.Errorf("%w (it expired at %s)", ErrAttestReplay, timefmt.JSON(c.ExpiresAt))
	}
	if err := checkAnswer(c, a, csr); err != nil {
		if berr := s.challenges.BurnChallenge(ctx, c.ID); berr != nil {
			s.log.Error("burn attestation challenge", "err", berr)
		}
		return nil, fmt.Errorf("%w: %w", ErrAttestation, err)
	}
	return c, nil
}

func checkAnswer(c *Challenge, a *protocol.Attestation, csr *x509.CertificateRequest) error {
	sum := sha256.Sum256(a.Secret)
	// Only the TPM holding the EK, with the AK named in the credential
	// loaded, recovers the secret.
	if subtle.ConstantTimeCompare(sum[:], c.SecretHash) != 1 {
		return attest.ErrNotBound
	}
	_, ak, err := attest.CheckAK(c.AKPublic)
	if err != nil {
		return err
	}
	akKey, _ := ak.(*ecdsa.PublicKey)
	csrKey, ok := csr.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return fmt.Errorf("%w: the certificate request's key is not ECDSA", attest.ErrOtherKey)
	}
	return attest.VerifyCertify(akKey, attest.Certification{CertifyInfo: a.CertifyInfo, Signature: a.Signature,
		KeyPublic: a.KeyPublic}, c.Nonce, csrKey)
}
