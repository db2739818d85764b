package applescep

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/cordon-mdm/cordon/internal/atomicfile"
	"github.com/cordon-mdm/cordon/internal/filelock"
	"github.com/cordon-mdm/cordon/internal/keyfile"
)

// File names of the SCEP decrypter in the data dir.
const (
	raKeyFile  = "scep-ra.key"
	raCertFile = "scep-ra.crt"
	raLockFile = "scep-ra.lock"
)

// raLifetime is long: Apple devices fetch the RA certificate at each
// enrollment, but a renewal would need the RA too, and nothing else
// trusts it (it only encrypts requests and signs replies).
const raLifetime = 10 * 365 * 24 * time.Hour

// RA is the SCEP registration authority: the RSA key SCEP clients
// encrypt their requests to (SCEP's envelope is RSA key transport, so
// Cordon's ECDSA CA cannot be the recipient) and that signs the replies.
type RA struct {
	Cert *x509.Certificate
	Key  *rsa.PrivateKey
}

// RAInDir returns the RA of dataDir, loaded (and made, the first time)
// at its first use rather than at every server start: an RSA key takes a
// moment to make, and a server that enrolls no Apple device never needs
// one. A failure is returned to that use and tried again at the next.
func RAInDir(dataDir string) func() (*RA, error) {
	var mu sync.Mutex
	var ra *RA
	return func() (*RA, error) {
		mu.Lock()
		defer mu.Unlock()
		if ra != nil {
			return ra, nil
		}
		r, err := LoadRA(dataDir)
		if err != nil {
			return nil, fmt.Errorf("SCEP RA: %w", err)
		}
		ra = r
		return ra, nil
	}
}

// LoadRA reads the RA from dataDir, creating an RSA-3072 key (0600) and
// a self-signed certificate on first start. Processes sharing the data
// dir (several servers on PostgreSQL) make it under a lock, so that one
// makes the pair and the others load it: two pairs written over each
// other would leave a key that does not match its certificate.
func LoadRA(dataDir string) (*RA, error) {
	keyPath, certPath := filepath.Join(dataDir, raKeyFile), filepath.Join(dataDir, raCertFile)
	b, err := os.ReadFile(certPath)
	if errors.Is(err, os.ErrNotExist) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		lock, lerr := filelock.Wait(ctx, filepath.Join(dataDir, raLockFile))
		if lerr != nil {
			return nil, fmt.Errorf("wait for another process making the RA: %w", lerr)
		}
		defer lock.Unlock()
		if b, err = os.ReadFile(certPath); errors.Is(err, os.ErrNotExist) {
			return createRA(keyPath, certPath)
		}
	}
	if err != nil {
		return nil, err
	}
	k, err := keyfile.Read(keyPath)
	if err != nil {
		return nil, err
	}
	key, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: not an RSA key", keyPath)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s: not a PEM certificate", certPath)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", certPath, err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("%s does not match %s", certPath, keyPath)
	}
	return &RA{Cert: cert, Key: key}, nil
}

func createRA(keyPath, certPath string) (*RA, error) {
	key, err := rsa.GenerateKey(rand.Reader, 3072)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	ski := sha256.Sum256(pub)
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "Cordon SCEP RA", Organization: []string{"Cordon"}},
		NotBefore:    now.Add(-time.Minute), NotAfter: now.Add(raLifetime),
		SubjectKeyId:       ski[:20],
		KeyUsage:           x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		SignatureAlgorithm: x509.SHA256WithRSA,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	// The key first: the certificate's presence says the pair is whole,
	// so a start interrupted between the two makes both again.
	if err := keyfile.Write(keyPath, key); err != nil {
		return nil, err
	}
	if err := atomicfile.Write(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return nil, err
	}
	return &RA{Cert: cert, Key: key}, nil
}
