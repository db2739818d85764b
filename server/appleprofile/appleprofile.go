// Package appleprofile hands out the signed Apple enrollment profile of
// an enrollment token (.mobileconfig: Cordon's root CA, a SCEP payload
// with a fresh one-time challenge, the MDM payload), for the API and the
// console alike: one place mints, signs and audits it.
package appleprofile

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"

	"github.com/cordon-mdm/cordon/enroll"
	"github.com/cordon-mdm/cordon/internal/secret"
	"github.com/cordon-mdm/cordon/profiles/apple"
	"github.com/cordon-mdm/cordon/server/audit"
)

// ActionIssued records that an enrollment profile (and with it a SCEP
// challenge) was handed out for a token.
const ActionIssued = "apple_enrollment_profile.issued"

// Challenges makes the one-time SCEP challenge of a token's profile
// (applescep.Service).
type Challenges interface {
	MintChallenge(ctx context.Context, tokenID, actor string) (string, error)
}

// Auditor records the hand-out (*audit.Log).
type Auditor interface {
	Record(ctx context.Context, e audit.Entry) error
}

// Config is where the profile points and what signs it.
type Config struct {
	// Host is the console's public host:port, where /scep and /mdm are.
	Host string
	// Root is Cordon's root CA, installed by the profile.
	Root *x509.Certificate
	// Identity is the certificate and key that sign the profile: the
	// console's TLS certificate, issued by Cordon's CA, so a device that
	// trusts the root sees the profile as verified.
	Identity func(ctx context.Context) (*tls.Certificate, error)
	// Topic is the stored APNs push certificate's topic, or an error
	// (applemdm.ErrNoPushCert) when none is stored: a device refuses an
	// MDM payload without one, so no challenge is spent on it.
	Topic func(ctx context.Context) (string, error)
}

// Issuer hands out enrollment profiles.
type Issuer struct {
	cfg        Config
	challenges Challenges
	audit      Auditor
}

// New returns an Issuer.
func New(cfg Config, ch Challenges, aud Auditor) *Issuer {
	return &Issuer{cfg: cfg, challenges: ch, audit: aud}
}

// Issue returns the signed profile for token (the enrollment token as IT
// holds it). An unparseable token is enroll.ErrUnknownToken; one unknown
// or expired is the store's refusal, through MintChallenge.
func (i *Issuer) Issue(ctx context.Context, token, actor, source string) ([]byte, error) {
	id, _, err := secret.Parse(enroll.TokenPrefix, token)
	if err != nil {
		return nil, enroll.ErrUnknownToken
	}
	topic, err := i.cfg.Topic(ctx)
	if err != nil {
		return nil, err
	}
	challenge, err := i.challenges.MintChallenge(ctx, id, actor)
	if err != nil {
		return nil, err
	}
	doc, err := apple.EnrollmentProfile(apple.EnrollmentOptions{Host: i.cfg.Host, Root: i.cfg.Root,
		Challenge: challenge, Topic: topic, Organization: "Cordon"})
	if err != nil {
		return nil, err
	}
	signed, err := i.sign(ctx, doc)
	if err != nil {
		return nil, err
	}
	// Only the token's id: the token and the challenge are credentials.
	if err := i.audit.Record(ctx, audit.Entry{Actor: actor, Source: source, Action: ActionIssued,
		Target: "token:" + id, Outcome: audit.Success}); err != nil {
		return nil, err
	}
	return signed, nil
}

func (i *Issuer) sign(ctx context.Context, doc []byte) ([]byte, error) {
	tc, err := i.cfg.Identity(ctx)
	if err != nil {
		return nil, err
	}
	key, ok := tc.PrivateKey.(crypto.Signer)
	if !ok || tc.Leaf == nil {
		return nil, errors.New("profile signing identity has no parsed leaf or signing key")
	}
	var chain []*x509.Certificate
	for _, der := range tc.Certificate[1:] {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, err
		}
		chain = append(chain, c)
	}
	return apple.Sign(doc, tc.Leaf, key, chain...)
}
