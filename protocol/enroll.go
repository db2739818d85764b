package protocol

import "errors"

// EnrollPath is the console-listener path of the enrollment exchange.
const EnrollPath = "/enroll"

// GatewayPath is the agent-listener path of the websocket channel.
const GatewayPath = "/v1/agent"

// EnrollRequest is what `cordon-agent enroll` posts to EnrollPath.
type EnrollRequest struct {
	Token string      `json:"token"`
	CSR   string      `json:"csr"` // PEM
	Facts DeviceFacts `json:"facts"`
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
