package api

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"

	"github.com/cordon-mdm/cordon/enroll"
	"github.com/cordon-mdm/cordon/internal/httpjson"
	"github.com/cordon-mdm/cordon/internal/input"
	"github.com/cordon-mdm/cordon/internal/secret"
	"github.com/cordon-mdm/cordon/profiles/apple"
	"github.com/cordon-mdm/cordon/server/audit"
)

// ActionAppleProfileIssued records that an enrollment profile (and with
// it a SCEP challenge) was handed out for a token.
const ActionAppleProfileIssued = "apple_enrollment_profile.issued"

// ChallengeMinter makes the one-time SCEP challenge of a token's
// enrollment profile (applescep.Service).
type ChallengeMinter interface {
	MintChallenge(ctx context.Context, tokenID, actor string) (string, error)
}

// AppleEnrollment is what POST /api/v1/apple/enrollment-profile needs.
type AppleEnrollment struct {
	Challenges ChallengeMinter
	// Host is the console's public host:port, where /scep and /mdm are.
	Host string
	// Root is Cordon's root CA, installed by the profile.
	Root *x509.Certificate
	// Identity is the certificate and key that sign the profile: the
	// console's TLS certificate, issued by Cordon's CA, so a device that
	// trusts the root sees the profile as verified.
	Identity func(ctx context.Context) (*tls.Certificate, error)
	// Topic (required) is the stored APNs push certificate's topic, or an error
	// (applemdm.ErrNoPushCert, 409) when none is stored: a device refuses
	// an MDM payload without one, and the challenge is not spent on it.
	Topic func(ctx context.Context) (string, error)
}

// WithAppleEnrollment serves POST /api/v1/apple/enrollment-profile.
func WithAppleEnrollment(e AppleEnrollment) Option { return func(a *API) { a.apple = &e } }

func (a *API) appleEnrollmentProfile(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Token *string `json:"token"`
	}
	if !a.decode(w, r, &body) {
		return
	}
	if body.Token == nil {
		a.fail(w, input.Errorf("token", "is required"))
		return
	}
	id, _, err := secret.Parse(enroll.TokenPrefix, *body.Token)
	if err != nil {
		a.fail(w, enroll.ErrUnknownToken)
		return
	}
	topic, err := a.apple.Topic(r.Context())
	if err != nil {
		a.fail(w, err)
		return
	}
	p := principal(r)
	challenge, err := a.apple.Challenges.MintChallenge(r.Context(), id, p.Actor)
	if err != nil {
		a.fail(w, err)
		return
	}
	doc, err := apple.EnrollmentProfile(apple.EnrollmentOptions{Host: a.apple.Host, Root: a.apple.Root,
		Challenge: challenge, Topic: topic, Organization: "Cordon"})
	if err != nil {
		a.fail(w, err)
		return
	}
	signed, err := a.signProfile(r.Context(), doc)
	if err != nil {
		a.fail(w, err)
		return
	}
	// Only the token's id: the token and the challenge are credentials.
	if err := a.audit.Record(r.Context(), audit.Entry{Actor: p.Actor, Source: httpjson.RemoteHost(r),
		Action: ActionAppleProfileIssued, Target: "token:" + id, Outcome: audit.Success}); err != nil {
		a.fail(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-apple-aspen-config")
	w.Header().Set("Content-Disposition", `attachment; filename="cordon-enrollment.mobileconfig"`)
	w.Write(signed)
}

func (a *API) signProfile(ctx context.Context, doc []byte) ([]byte, error) {
	tc, err := a.apple.Identity(ctx)
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
