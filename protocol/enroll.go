package protocol

import (
	"errors"
	"fmt"
)

// EnrollPath is the console-listener path of the enrollment exchange.
const EnrollPath = "/enroll"

// EnrollChallengePath is the first step of an attested enrollment: a TPM
// agent sends its endorsement and attestation keys and gets a credential
// to activate and a nonce to certify its identity key over.
const EnrollChallengePath = "/enroll/challenge"

// GatewayPath is the agent-listener path of the websocket channel.
const GatewayPath = "/v1/agent"

// EnrollRequest is what `cordon-agent enroll` posts to EnrollPath.
type EnrollRequest struct {
	Token string      `json:"token"`
	CSR   string      `json:"csr"` // PEM
	Facts DeviceFacts `json:"facts"`
	// Attestation is a TPM agent's evidence that the CSR's key lives in
	// the TPM whose challenge it answers; absent for a file key (and from
	// agents before capability version 11).
	Attestation *Attestation `json:"attestation,omitempty"`
}

// TPM structures travel as their TPM wire encoding ([]byte: base64 std in
// JSON). These bound them: a TPMT_PUBLIC is a few hundred bytes, an EK
// certificate a few KiB.
const (
	MaxTPMStructure = 2048
	MaxEKCert       = 8192
)

// ChallengeRequest is what a TPM agent posts to EnrollChallengePath. The
// token is checked, not consumed: it is redeemed by the enrollment that
// answers the challenge.
type ChallengeRequest struct {
	Token string `json:"token"`
	// EKCert is the EK certificate (DER) from the TPM's NV, when it has
	// one (RSA index 0x01c00002, else ECC 0x01c0000a).
	EKCert []byte `json:"ek_cert,omitempty"`
	// EKPublic and AKPublic are TPMT_PUBLIC areas: the endorsement key
	// (the standard EK template) and the attestation key (a restricted
	// ECDSA P-256 signing key made for this enrollment).
	EKPublic []byte `json:"ek_public"`
	AKPublic []byte `json:"ak_public"`
}

// Check validates a ChallengeRequest's shape; the server checks the TPM
// structures themselves.
func (r *ChallengeRequest) Check() error {
	switch {
	case r.Token == "":
		return errors.New("token is required")
	case len(r.EKPublic) == 0 || len(r.AKPublic) == 0:
		return errors.New("ek_public and ak_public are required")
	case len(r.EKPublic) > MaxTPMStructure || len(r.AKPublic) > MaxTPMStructure:
		return fmt.Errorf("ek_public and ak_public are at most %d bytes", MaxTPMStructure)
	case len(r.EKCert) > MaxEKCert:
		return fmt.Errorf("ek_cert is at most %d bytes", MaxEKCert)
	}
	return checkLens(map[string]string{"token": r.Token}, 256)
}

// ChallengeResponse is the server's credential for the AK: activated by
// the TPM that holds the EK (TPM2_ActivateCredential), it yields the
// secret the enrollment returns.
type ChallengeResponse struct {
	ChallengeID string `json:"challenge_id"`
	// Credential is the TPM2B_ID_OBJECT's contents (integrity HMAC and
	// encrypted identity), Secret the TPM2B_ENCRYPTED_SECRET's: what
	// TPM2_MakeCredential would have made for the AK's name under the EK.
	Credential []byte `json:"credential"`
	Secret     []byte `json:"secret"`
	// Nonce is the qualifying data of the TPM2_Certify to send.
	Nonce     []byte `json:"nonce"`
	ExpiresAt string `json:"expires_at"`
}

// Attestation answers a challenge in EnrollRequest.
type Attestation struct {
	ChallengeID string `json:"challenge_id"`
	// Secret is what TPM2_ActivateCredential returned.
	Secret []byte `json:"secret"`
	// CertifyInfo is TPM2_Certify's TPMS_ATTEST (the bytes signed),
	// Signature its TPMT_SIGNATURE by the AK, KeyPublic the certified
	// identity key's TPMT_PUBLIC.
	CertifyInfo []byte `json:"certify_info"`
	Signature   []byte `json:"signature"`
	KeyPublic   []byte `json:"key_public"`
}

func (a *Attestation) check() error {
	switch {
	case a.ChallengeID == "" || len(a.ChallengeID) > 64:
		return errors.New("attestation.challenge_id is required (at most 64 characters)")
	case len(a.Secret) == 0 || len(a.CertifyInfo) == 0 || len(a.Signature) == 0 || len(a.KeyPublic) == 0:
		return errors.New("attestation needs secret, certify_info, signature and key_public")
	case len(a.Secret) > 64 || len(a.CertifyInfo) > MaxTPMStructure || len(a.Signature) > MaxTPMStructure || len(a.KeyPublic) > MaxTPMStructure:
		return errors.New("attestation: a field is larger than a TPM makes it")
	}
	return checkLens(map[string]string{"attestation.challenge_id": a.ChallengeID}, 64)
}

// DeviceFacts describes the device at enrollment.
type DeviceFacts struct {
	Hostname     string `json:"hostname"`
	Platform     string `json:"platform"`
	OSName       string `json:"os_name,omitempty"`
	OSVersion    string `json:"os_version,omitempty"`
	AgentVersion string `json:"agent_version,omitempty"`
	Serial       string `json:"serial,omitempty"`
}

// Check validates an EnrollRequest.
func (r *EnrollRequest) Check() error {
	switch {
	case r.Token == "":
		return errors.New("token is required")
	case r.CSR == "":
		return errors.New("csr is required")
	case r.Facts.Platform == "":
		return errors.New("facts.platform is required")
	}
	if r.Attestation != nil {
		if err := r.Attestation.check(); err != nil {
			return err
		}
	}
	return checkLens(map[string]string{
		"token": r.Token, "facts.hostname": r.Facts.Hostname, "facts.platform": r.Facts.Platform,
		"facts.os_name": r.Facts.OSName, "facts.os_version": r.Facts.OSVersion,
		"facts.agent_version": r.Facts.AgentVersion, "facts.serial": r.Facts.Serial,
	}, 256)
}

// EnrollResponse is the server's answer to a successful enrollment.
type EnrollResponse struct {
	DeviceID string `json:"device_id"`
	// CertificateChain is PEM: the device certificate, then intermediates.
	CertificateChain string `json:"certificate_chain"`
	// RootCA is the PEM root the agent trusts for the gateway.
	RootCA     string `json:"root_ca"`
	GatewayURL string `json:"gateway_url"`
	// CommandSigningKey is the server's Ed25519 public key, base64 (std)
	// of the 32 raw bytes; commands are verified with it.
	CommandSigningKey string `json:"command_signing_key"`
}
