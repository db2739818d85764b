// Package enrollment is the agent's side of the enroll exchange: it pins
// the server's root CA by fingerprint (or trusts it on first use, and says
// so), sends token + CSR + device facts, and saves what comes back.
package enrollment

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/cordon-mdm/cordon/agent/keystore"
	"github.com/cordon-mdm/cordon/agent/state"
	"github.com/cordon-mdm/cordon/internal/fips"
	"github.com/cordon-mdm/cordon/pki/identity"
	"github.com/cordon-mdm/cordon/protocol"
)

// Request is one enrollment.
type Request struct {
	Server string // https://host:port of the console listener
	Token  string
	// Fingerprint pins the root CA (SHA-256 hex, colons allowed). Empty
	// means trust on first use.
	Fingerprint string
	State       state.Dir
	Facts       protocol.DeviceFacts
	// FIPS restricts TLS to what FIPS 140-3 mode allows; Enroll refuses
	// it unless the process runs the frozen module. Callers pass
	// fips.Default() unless the operator chose otherwise.
	FIPS bool
}

// Result reports what happened.
type Result struct {
	Config         state.Config
	TrustedOnFirst bool // no fingerprint was given; the root was accepted as presented
}

// ErrAlreadyEnrolled protects an existing identity from being replaced.
var ErrAlreadyEnrolled = errors.New("this state directory is already enrolled; remove it to enroll again")

// Enroll performs the exchange and saves the state.
func Enroll(ctx context.Context, req Request) (*Result, error) {
	if req.FIPS {
		if err := fips.Current().Check(); err != nil {
			return nil, err
		}
	}
	if _, err := req.State.LoadConfig(); err == nil {
		return nil, ErrAlreadyEnrolled
	}
	u, err := url.Parse(req.Server)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("--server must be https://HOST:PORT, got %q", req.Server)
	}
	if err := req.State.Ensure(); err != nil {
		return nil, err
	}
	ks, err := req.State.KeyStore()
	if err != nil {
		return nil, err
	}
	signer, err := ks.Signer()
	if err != nil && ks.Kind() == "tpm" {
		// No silent fallback: a device that has a TPM but cannot use it
		// (an owner password, say) is for the operator to decide.
		return nil, fmt.Errorf("device key in the TPM: %w (--keystore file keeps it in a file instead)", err)
	}
	if err != nil {
		return nil, fmt.Errorf("device key: %w", err)
	}
	csrDER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: req.Facts.Hostname}}, signer)
	if err != nil {
		return nil, err
	}
	pin := identity.NormalizeFingerprint(req.Fingerprint)
	var root *x509.Certificate
	tlsCfg := fips.TLS(req.FIPS)
	// Verification is done below against the pinned (or first-seen) root
	// instead of the system roots, which never hold an agency CA.
	tlsCfg.InsecureSkipVerify = true
	tlsCfg.VerifyConnection = func(cs tls.ConnectionState) error {
		r, err := identity.VerifyPinnedServer(cs, u.Hostname(), pin)
		root = r
		return err
	}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		Proxy: http.ProxyFromEnvironment, TLSClientConfig: tlsCfg}}
	enrollReq := protocol.EnrollRequest{Token: req.Token,
		CSR: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csrDER})), Facts: req.Facts}
	base := strings.TrimRight(req.Server, "/")
	if a, ok := ks.(keystore.Attesting); ok {
		// A TPM key is enrolled with its proof: without it the server
		// records the device as software, whatever the agent says.
		if enrollReq.Attestation, err = attestation(ctx, client, base, req.Token, a); err != nil {
			return nil, err
		}
	}
	var er protocol.EnrollResponse
	if err := post(ctx, client, base+protocol.EnrollPath, enrollReq, &er); err != nil {
		return nil, fmt.Errorf("enrollment refused: %w", err)
	}
	if err := checkIssued(er, root, signer.Public()); err != nil {
		return nil, err
	}
	cfg := state.Config{DeviceID: er.DeviceID, ServerURL: req.Server, GatewayURL: er.GatewayURL,
		CommandSigningKey: er.CommandSigningKey, RootFingerprint: identity.Fingerprint(root), EnrolledAt: time.Now().UTC(),
		KeyStore: ks.Kind()}
	if err := req.State.SaveEnrollment(cfg, er.CertificateChain, identity.EncodeChain(root)); err != nil {
		return nil, err
	}
	return &Result{Config: cfg, TrustedOnFirst: pin == ""}, nil
}

// attestation runs the challenge step: the TPM's evidence out, the
// server's credential and nonce back, the TPM's answer returned.
func attestation(ctx context.Context, client *http.Client, base, token string, a keystore.Attesting) (*protocol.Attestation, error) {
	ev, err := a.Evidence()
	if err != nil {
		return nil, fmt.Errorf("TPM attestation evidence: %w", err)
	}
	var ch protocol.ChallengeResponse
	err = post(ctx, client, base+protocol.EnrollChallengePath,
		protocol.ChallengeRequest{Token: token, EKCert: ev.EKCert, EKPublic: ev.EKPublic, AKPublic: ev.AKPublic}, &ch)
	var he *httpError
	if errors.As(err, &he) && (he.status == http.StatusNotFound || he.status == http.StatusMethodNotAllowed) {
		// A server from before attestation (capability version 11) has
		// no challenge: the device enrolls as before, and such a server
		// records no level at all. A server that has the route and
		// refuses is never bypassed this way.
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("enrollment refused at the attestation challenge: %w", err)
	}
	secret, c, err := ev.Answer(ch.Credential, ch.Secret, ch.Nonce)
	if err != nil {
		return nil, fmt.Errorf("TPM attestation: %w", err)
	}
	return &protocol.Attestation{ChallengeID: ch.ChallengeID, Secret: secret, CertifyInfo: c.CertifyInfo,
		Signature: c.Signature, KeyPublic: c.KeyPublic}, nil
}

// post sends body as JSON and decodes a 201's answer into out; any other
// status is an error with the server's reason.
func post(ctx context.Context, client *http.Client, url string, body, out any) error {
	data, err := json.Marshal(body)
	if err != nil {
		return err
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(data))
	if err != nil {
		return err
	}
	hreq.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(hreq)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusCreated {
		var e struct {
			Error string `json:"error"`
		}
		json.Unmarshal(raw, &e)
		if e.Error == "" {
			e.Error = resp.Status
		}
		return &httpError{status: resp.StatusCode, msg: e.Error}
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("server answer: %w", err)
	}
	return nil
}

// httpError is a refusal with the server's status and reason.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

// checkIssued makes sure the server gave us a certificate for our key,
// chaining to the root we pinned, with the device id it announced.
func checkIssued(er protocol.EnrollResponse, root *x509.Certificate, pub crypto.PublicKey) error {
	if root == nil {
		return errors.New("server root unknown")
	}
	chain, err := identity.ParseChain([]byte(er.CertificateChain))
	if err != nil {
		return fmt.Errorf("enroll response certificate: %w", err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(root)
	if err := identity.VerifyDeviceChain(chain, roots, pub, er.DeviceID); err != nil {
		return fmt.Errorf("issued %w", err)
	}
	if er.GatewayURL == "" {
		return errors.New("server gave no gateway URL")
	}
	return nil
}

// ErrRefused matches (errors.Is) a server that refused the enrollment
// itself (403: an unknown, expired or used-up token, a CSR claiming an
// identity), as opposed to one that could not be reached.
var ErrRefused = errors.New("refused by the server")

// Is makes errors.Is(err, ErrRefused) true for a 403.
func (e *httpError) Is(target error) bool {
	return target == ErrRefused && e.status == http.StatusForbidden
}
