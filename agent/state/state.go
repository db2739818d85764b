// Package state is the agent's state directory: identity key, certificate
// chain, pinned root, enrollment record, spool and last status. The
// directory is 0700; secrets in it are 0600.
package state

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/cordon-mdm/cordon/agent/keystore"
	"github.com/cordon-mdm/cordon/internal/atomicfile"
	"github.com/cordon-mdm/cordon/pki/identity"
	"github.com/cordon-mdm/cordon/protocol"
)

// ErrNotEnrolled means the state dir holds no enrollment.
var ErrNotEnrolled = errors.New("this device is not enrolled: run cordon-agent enroll")

// Config is the enrollment record.
type Config struct {
	DeviceID          string    `json:"device_id"`
	ServerURL         string    `json:"server_url"`
	GatewayURL        string    `json:"gateway_url"`
	CommandSigningKey string    `json:"command_signing_key"`
	RootFingerprint   string    `json:"root_fingerprint"`
	EnrolledAt        time.Time `json:"enrolled_at"`
	// KeyStore is where the identity key was made: "file" or "tpm".
	// Empty is "file" (enrolled before the TPM store existed). A device
	// keeps this for life; only a new enrollment changes it.
	KeyStore string `json:"key_store,omitempty"`
}

// KeyStoreKind is KeyStore with the empty legacy value read as "file".
func (c Config) KeyStoreKind() string {
	if c.KeyStore == "" {
		return string(keystore.FileKind)
	}
	return c.KeyStore
}

// Status is what the running agent last said about itself.
type Status struct {
	Connection  string            `json:"connection"` // connecting, connected, disconnected
	Since       time.Time         `json:"since"`
	LastError   string            `json:"last_error,omitempty"`
	LastPosture *protocol.Posture `json:"last_posture,omitempty"`
	LastAckAt   *time.Time        `json:"last_ack_at,omitempty"`
	Spooled     int               `json:"spooled"`
	CertExpires *time.Time        `json:"certificate_expires,omitempty"`
	// Compliance and Quarantine are the server's word (device_state);
	// empty until it has spoken.
	Compliance string `json:"compliance,omitempty"`
	Quarantine string `json:"quarantine,omitempty"`
	// Devices are the owner's enrolled devices, for reporting one lost.
	Devices []protocol.OwnedDevice `json:"devices,omitempty"`
	// Reports are the incident reports filed here, newest first (the last
	// 20), with what became of each.
	Reports []Report `json:"reports,omitempty"`
}

// Report is an incident report as the agent tracks it.
type Report struct {
	ID       string    `json:"id"`
	DeviceID string    `json:"device_id"`
	Kind     string    `json:"kind"`
	FiledAt  time.Time `json:"filed_at"`
	// State is "spooled" (waiting for the server), "filed" (stored
	// there as Incident) or "refused" (Error says why).
	State    string `json:"state"`
	Incident string `json:"incident,omitempty"`
	// Request is the server's id for a Bluetooth approval request (Kind
	// "bluetooth_request").
	Request string `json:"request,omitempty"`
	Error   string `json:"error,omitempty"`
}

// Dir is a state directory.
type Dir struct {
	Path string
	// Keys is --keystore: which key store a device not yet enrolled
	// gets. Empty is auto. For an enrolled device it may only confirm
	// the store the device was enrolled with.
	Keys keystore.Choice
	// TPM reaches the TPM; nil is the platform's (/dev/tpmrm0, TBS).
	// Development and tests point it at swtpm.
	TPM keystore.Opener
}

const (
	configFile = "agent.json"
	certFile   = "cert.pem"
	rootFile   = "root.pem"
	keyFile    = "key.pem"
	statusFile = "status.json"
	// sightingsFile is when each pending security update was first seen
	// pending: the start of its patch window where the platform does not
	// say when it was released.
	sightingsFile = "pending-updates.json"
)

// Ensure creates the directory with mode 0700.
func (d Dir) Ensure() error {
	if err := os.MkdirAll(d.Path, 0o700); err != nil {
		return err
	}
	return os.Chmod(d.Path, 0o700)
}

// SpoolDir holds unacknowledged reports.
func (d Dir) SpoolDir() string { return filepath.Join(d.Path, "spool") }

// ReportsDir holds incident reports the server has not yet acknowledged.
// It is a spool of its own: reports are never dropped to make room.
func (d Dir) ReportsDir() string { return filepath.Join(d.Path, "reports") }

// SaveEnrollment records a completed enrollment. The config is written
// last: its presence means the enrollment is whole.
func (d Dir) SaveEnrollment(cfg Config, chainPEM, rootPEM string) error {
	if err := atomicfile.Write(filepath.Join(d.Path, rootFile), []byte(rootPEM), 0o644); err != nil {
		return err
	}
	if err := d.SaveCertificate(chainPEM); err != nil {
		return err
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(d.Path, configFile), b, 0o600)
}

// SaveCertificate replaces the device certificate chain (renewal).
func (d Dir) SaveCertificate(chainPEM string) error {
	return atomicfile.Write(filepath.Join(d.Path, certFile), []byte(chainPEM), 0o600)
}

// LoadConfig reads the enrollment record.
func (d Dir) LoadConfig() (*Config, error) {
	b, err := os.ReadFile(filepath.Join(d.Path, configFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotEnrolled
	}
	if err != nil {
		return nil, err
	}
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("%s: %w", configFile, err)
	}
	return &c, nil
}

// Roots is the pinned root as a pool.
func (d Dir) Roots() (*x509.CertPool, error) {
	b, err := os.ReadFile(filepath.Join(d.Path, rootFile))
	if err != nil {
		return nil, err
	}
	certs, err := identity.ParseChain(b)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(certs[0])
	return pool, nil
}

// Certificate loads the TLS client certificate: chain from disk, key
// from the key store.
func (d Dir) Certificate() (*tls.Certificate, error) {
	b, err := os.ReadFile(filepath.Join(d.Path, certFile))
	if err != nil {
		return nil, err
	}
	chain, err := identity.ParseChain(b)
	if err != nil {
		return nil, err
	}
	ks, err := d.KeyStore()
	if err != nil {
		return nil, err
	}
	signer, err := ks.Signer()
	if err != nil {
		return nil, err
	}
	// Only the leaf goes on the wire: the gateway holds the intermediate
	// already, and every certificate sent is kept by the server for the
	// connection's life.
	return &tls.Certificate{PrivateKey: signer, Leaf: chain[0], Certificate: [][]byte{chain[0].Raw}}, nil
}

// SaveStatus records the agent's status for `cordon-agent status`.
func (d Dir) SaveStatus(s Status) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(d.Path, statusFile), b, 0o600)
}

// LoadStatus reads the last status; a missing file is a zero Status.
func (d Dir) LoadStatus() (Status, error) {
	var s Status
	b, err := os.ReadFile(filepath.Join(d.Path, statusFile))
	if errors.Is(err, os.ErrNotExist) {
		return Status{Connection: "not running"}, nil
	}
	if err != nil {
		return s, err
	}
	return s, json.Unmarshal(b, &s)
}

// SaveSightings records when each pending security update (by name) was
// first seen pending. The map is the whole set: updates no longer pending
// are left out by the caller and so dropped.
func (d Dir) SaveSightings(m map[string]time.Time) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(d.Path, sightingsFile), b, 0o600)
}

// LoadSightings reads what SaveSightings wrote; none yet is an empty map.
func (d Dir) LoadSightings() (map[string]time.Time, error) {
	m := map[string]time.Time{}
	b, err := os.ReadFile(filepath.Join(d.Path, sightingsFile))
	if errors.Is(err, os.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return map[string]time.Time{}, fmt.Errorf("%s: %w", sightingsFile, err)
	}
	return m, nil
}
