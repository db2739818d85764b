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
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/cordon-mdm/cordon/internal/httpjson"
	"github.com/cordon-mdm/cordon/internal/secret"
	"github.com/cordon-mdm/cordon/pki"
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
}

// Enrollment is what a successful exchange creates.
type Enrollment struct {
	DeviceID string
	Facts    protocol.DeviceFacts
	Owner    string
	Chain    []*x509.Certificate
}

// Store persists tokens and enrollments.
type Store interface {
	CreateToken(ctx context.Context, t Token) error
	// Redeem consumes one use of the token and, in the same transaction,
	// records what issue returns. It returns ErrUnknownToken,
	// ErrTokenExpired or ErrTokenUsed (wrapped or not) on refusal.
	Redeem(ctx context.Context, id string, hash []byte, issue func(Token) (*Enrollment, error)) error
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

// Service issues tokens and serves POST /enroll.
type Service struct {
	store      Store
	signer     Signer
	audit      Auditor
	log        *slog.Logger
	gatewayURL string
	commandKey ed25519.PublicKey
	maxTTL     time.Duration
	now        func() time.Time
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
	s := &Service{store: st, signer: signer, audit: auditor, log: slog.New(slog.DiscardHandler),
		maxTTL: 30 * 24 * time.Hour, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	return s
}

// TokenRequest asks for a new token.
type TokenRequest struct {
	TTL   time.Duration
	Uses  int
	Owner string
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
	if req.TTL == 0 {
		req.TTL = 24 * time.Hour
	}
	if req.Uses == 0 {
		req.Uses = 1
	}
	switch {
	case req.TTL < time.Minute || req.TTL > s.maxTTL:
		return "", time.Time{}, fmt.Errorf("%w: ttl must be between 1m and %v", ErrInvalid, s.maxTTL)
	case req.Uses < 1 || req.Uses > 10000:
		return "", time.Time{}, fmt.Errorf("%w: uses must be between 1 and 10000", ErrInvalid)
	case len(req.Owner) > 256:
		return "", time.Time{}, fmt.Errorf("%w: owner too long", ErrInvalid)
	}
	sec := secret.New(TokenPrefix)
	now := s.now().UTC()
	t := Token{ID: sec.ID, Hash: sec.Hash, ExpiresAt: now.Add(req.TTL), Uses: req.Uses,
		Owner: req.Owner, CreatedBy: actor, CreatedAt: now}
	if err := s.store.CreateToken(ctx, t); err != nil {
		return "", time.Time{}, err
	}
	// The token id (not the secret) identifies it in the trail.
	if err := s.audit.Record(ctx, Event{Actor: actor, Source: source, Action: ActionTokenCreated,
		Target: "token:" + t.ID, Outcome: "success", Details: map[string]string{
			"expires_at": t.ExpiresAt.Format(time.RFC3339), "uses": fmt.Sprint(t.Uses), "owner": t.Owner}}); err != nil {
		return "", time.Time{}, err
	}
	return sec.Text, t.ExpiresAt, nil
}

// ServeHTTP handles POST /enroll.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		httpjson.Error(w, http.StatusMethodNotAllowed, "use POST")
		return
	}
	source := httpjson.RemoteHost(r)
	resp, err := s.enroll(r.Context(), r.Body, source)
	if err != nil {
		status := http.StatusBadRequest
		switch {
		case errors.Is(err, ErrUnknownToken), errors.Is(err, ErrTokenExpired), errors.Is(err, ErrTokenUsed):
			status = http.StatusForbidden
		case errors.Is(err, errInternal):
			status = http.StatusInternalServerError
		}
		httpjson.Error(w, status, err.Error())
		return
	}
	httpjson.Write(w, http.StatusCreated, resp)
}

var errInternal = errors.New("internal error")

func (s *Service) enroll(ctx context.Context, body io.Reader, source string) (*protocol.EnrollResponse, error) {
	tokenID := ""
	refuse := func(err error) error {
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
	var req protocol.EnrollRequest
	dec := json.NewDecoder(io.LimitReader(body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, refuse(fmt.Errorf("malformed request: %v", err))
	}
	if err := req.Check(); err != nil {
		return nil, refuse(fmt.Errorf("malformed request: %v", err))
	}
	id, hash, err := secret.Parse(TokenPrefix, req.Token)
	if err != nil {
		return nil, refuse(ErrUnknownToken)
	}
	tokenID = id
	csr, err := pki.ParseCSR(req.CSR)
	if err != nil {
		return nil, refuse(err)
	}
	if err := pki.CheckDeviceCSR(csr); err != nil {
		return nil, refuse(err)
	}
	deviceID := uuid.NewString()
	var enr *Enrollment
	err = s.store.Redeem(ctx, id, hash, func(t Token) (*Enrollment, error) {
		chain, err := s.signer.SignDevice(ctx, csr, deviceID)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errInternal, err)
		}
		enr = &Enrollment{DeviceID: deviceID, Facts: req.Facts, Owner: t.Owner, Chain: chain}
		return enr, nil
	})
	if err != nil {
		if errors.Is(err, ErrUnknownToken) || errors.Is(err, ErrTokenExpired) || errors.Is(err, ErrTokenUsed) {
			return nil, refuse(err)
		}
		s.log.Error("enrollment failed", "err", err)
		return nil, refuse(fmt.Errorf("%w: could not enroll", errInternal))
	}
	leaf := enr.Chain[0]
	for _, e := range []Event{
		{Actor: "token:" + id, Source: source, Action: ActionEnrolled, Target: "device:" + deviceID, Outcome: "success",
			Details: map[string]string{"hostname": req.Facts.Hostname, "platform": req.Facts.Platform, "owner": enr.Owner}},
		{Actor: "token:" + id, Source: source, Action: ActionCertIssued, Target: "device:" + deviceID, Outcome: "success",
			Details: map[string]string{"serial": identity.Serial(leaf.SerialNumber), "not_after": leaf.NotAfter.UTC().Format(time.RFC3339)}},
	} {
		if err := s.audit.Record(ctx, e); err != nil {
			s.log.Error("audit enrollment", "err", err)
		}
	}
	s.log.Info("device enrolled", "device_id", deviceID, "hostname", req.Facts.Hostname, "source", source)
	return &protocol.EnrollResponse{
		DeviceID:          deviceID,
		CertificateChain:  identity.EncodeChain(enr.Chain...),
		RootCA:            identity.EncodeChain(s.signer.Root()),
		GatewayURL:        s.gatewayURL,
		CommandSigningKey: base64.StdEncoding.EncodeToString(s.commandKey),
	}, nil
}
