package applemdm

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/micromdm/nanomdm/cryptoutil"
	"github.com/micromdm/nanomdm/storage/diskv"
	"github.com/micromdm/nanomdm/storage/pgsql"

	"github.com/cordon-mdm/cordon/internal/timefmt"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/store"
)

// ActionPushCertStored records a stored APNs push certificate (details:
// topic, not_after, serial, and replaced_topic when the topic changed).
// Never the key.
const ActionPushCertStored = "apple.push_cert_stored"

// MaxPushCertPEM bounds each of the certificate and key files: Apple's
// certificate with its chain and an RSA 4096 key are a few KiB.
const MaxPushCertPEM = 64 << 10

// PushCertWarnDays is how many days before expiry the console warns: an
// expired push certificate leaves every Apple device unreachable, and
// renewing it at Apple's portal needs the Apple ID that created it.
const PushCertWarnDays = 30

// ErrPushCert refuses a certificate and key that cannot push: the
// message says why (no certificate, an encrypted or mismatched key, no
// APNs topic, expired).
var ErrPushCert = errors.New("not a usable APNs push certificate")

// ErrNoPushCert: no APNs push certificate is stored yet, so devices
// cannot be woken and an enrollment profile would carry no topic.
var ErrNoPushCert = errors.New("no APNs push certificate is stored: upload the agency's (cordon-server apple push-cert, or the console's APNs page)")

// topicFile names the topic of the push certificate in use: nanomdm's
// store keeps certificates by topic and cannot list them.
const topicFile = "push-topic"

// PushCertStatus is the stored push certificate as the console shows it.
type PushCertStatus struct {
	Topic    string
	Serial   string
	NotAfter time.Time
	// DaysLeft is whole days until NotAfter, negative once expired.
	DaysLeft int
	Expired  bool
	// Warning: expired, or PushCertWarnDays or fewer days left.
	Warning bool
}

// Transactor runs fn in one database transaction (*store.Store).
type Transactor interface {
	InTx(ctx context.Context, fn func(tx *store.Store) error) error
}

// PushCerts keeps the agency's APNs push certificate in nanomdm's store,
// where nanopush reads it: its PostgreSQL storage when Cordon runs on
// PostgreSQL, otherwise its file store in dir. The server and the host
// command (cordon-server apple push-cert) share it. The topic in use is
// named in dir on both, since neither store can list its certificates.
type PushCerts struct {
	dir   string
	db    *sql.DB // nanomdm's PostgreSQL schema, nil on the file store
	kv    func() pushCertKV
	tx    Transactor
	audit Auditor
	now   func() time.Time
}

// pushCertKV is the part of nanomdm's storage that holds push
// certificates.
type pushCertKV interface {
	RetrievePushCert(ctx context.Context, topic string) (*tls.Certificate, string, error)
	StorePushCert(ctx context.Context, pemCert, pemKey []byte) error
}

// NewPushCerts returns the push certificate store over nanomdm's store:
// db's (a pool on the schema store.SchemaDB opens) when db is not nil,
// else the file store in dir; now (nil: time.Now) decides expiry.
func NewPushCerts(dir string, db *sql.DB, tx Transactor, aud Auditor, now func() time.Time) (*PushCerts, error) {
	if now == nil {
		now = time.Now
	}
	// The file store is opened afresh for each use: diskv caches what it
	// read, and the host command writes from another process, so a
	// cached stale token would hide a renewed certificate from the server.
	kv := func() pushCertKV { return diskv.New(dir) }
	if db != nil {
		pg, err := pgsql.New(pgsql.WithDB(db))
		if err != nil {
			return nil, fmt.Errorf("apple mdm push certificates: %w", err)
		}
		kv = func() pushCertKV { return pg }
	}
	return &PushCerts{dir: dir, db: db, kv: kv, tx: tx, audit: aud, now: now}, nil
}

// Store validates certPEM and keyPEM and stores them for their topic,
// with an audit entry. The entry is appended in a transaction and the
// files are written inside it, so a trail that cannot be written stores
// nothing; if the commit itself fails after the files were written, the
// previous certificate and topic are put back.
func (p *PushCerts) Store(ctx context.Context, certPEM, keyPEM []byte, actor, source string) (PushCertStatus, error) {
	leaf, certs, key, err := p.validate(certPEM, keyPEM)
	if err != nil {
		return PushCertStatus{}, err
	}
	topic, _ := cryptoutil.TopicFromCert(leaf) // validate checked it
	if err := os.MkdirAll(p.dir, 0o700); err != nil {
		return PushCertStatus{}, fmt.Errorf("apple mdm store: %w", err)
	}
	prevTopic, err := p.Topic(ctx)
	if err != nil && !errors.Is(err, ErrNoPushCert) {
		return PushCertStatus{}, err
	}
	prev, _, prevErr := p.kv().RetrievePushCert(ctx, topic)
	details := map[string]string{"topic": topic, "not_after": timefmt.JSON(leaf.NotAfter), "serial": leaf.SerialNumber.Text(16)}
	if prevTopic != "" && prevTopic != topic {
		details["replaced_topic"] = prevTopic
	}
	written := false
	err = p.tx.InTx(ctx, func(tx *store.Store) error {
		if err := p.audit.RecordTx(ctx, tx, audit.Entry{Actor: actor, Source: source, Action: ActionPushCertStored,
			Target: "push_cert:" + topic, Outcome: audit.Success, Details: details}); err != nil {
			return err
		}
		written = true
		if err := p.kv().StorePushCert(ctx, certs, key); err != nil {
			return fmt.Errorf("store push certificate: %w", err)
		}
		return p.writeTopic(topic)
	})
	if err != nil && written {
		err = errors.Join(err, p.restore(ctx, prevTopic, topic, prev, prevErr))
	}
	if err != nil {
		return PushCertStatus{}, err
	}
	return p.status(leaf, topic), nil
}

// restore puts back what Store replaced. On the file store a certificate
// for a new topic stays (diskv has no delete), unreferenced: no profile
// carries its topic; on PostgreSQL it is deleted, as there the newest
// certificate is the one in use.
func (p *PushCerts) restore(ctx context.Context, topic, stored string, prev *tls.Certificate, prevErr error) error {
	var errs []error
	if prevErr == nil && prev != nil {
		if certs, key, err := encodePair(prev); err != nil {
			errs = append(errs, err)
		} else {
			errs = append(errs, p.kv().StorePushCert(ctx, certs, key))
		}
	} else if p.db != nil {
		_, err := p.db.ExecContext(ctx, "DELETE FROM push_certs WHERE topic = $1", stored)
		errs = append(errs, err)
	}
	switch {
	case p.db != nil:
		// The topic in use is the newest certificate's: nothing on disk.
	case topic == "":
		if err := os.Remove(filepath.Join(p.dir, topicFile)); err != nil && !os.IsNotExist(err) {
			errs = append(errs, err)
		}
	default:
		errs = append(errs, p.writeTopic(topic))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("restoring the previous push certificate: %w", err)
	}
	return nil
}

// Topic is the APNs topic of the stored push certificate, or
// ErrNoPushCert. On PostgreSQL it is the newest certificate's, so that
// the database alone (a restore, a fail-over) holds it; on the file store
// the push-topic file names it, since diskv cannot list certificates.
func (p *PushCerts) Topic(ctx context.Context) (string, error) {
	if p.db != nil {
		var topic string
		err := p.db.QueryRowContext(ctx, "SELECT topic FROM push_certs ORDER BY updated_at DESC, topic LIMIT 1").Scan(&topic)
		if errors.Is(err, sql.ErrNoRows) {
			return "", ErrNoPushCert
		}
		if err != nil {
			return "", fmt.Errorf("push certificate topic: %w", err)
		}
		return topic, nil
	}
	b, err := os.ReadFile(filepath.Join(p.dir, topicFile))
	if os.IsNotExist(err) {
		return "", ErrNoPushCert
	}
	if err != nil {
		return "", fmt.Errorf("push certificate topic: %w", err)
	}
	topic := strings.TrimSpace(string(b))
	if topic == "" {
		return "", ErrNoPushCert
	}
	return topic, nil
}

// Status describes the stored push certificate, or ErrNoPushCert.
func (p *PushCerts) Status(ctx context.Context) (PushCertStatus, error) {
	topic, err := p.Topic(ctx)
	if err != nil {
		return PushCertStatus{}, err
	}
	c, _, err := p.kv().RetrievePushCert(ctx, topic)
	if err != nil {
		return PushCertStatus{}, fmt.Errorf("push certificate of %s: %w", topic, err)
	}
	leaf := c.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return PushCertStatus{}, fmt.Errorf("push certificate of %s: %w", topic, err)
		}
	}
	return p.status(leaf, topic), nil
}

func (p *PushCerts) status(leaf *x509.Certificate, topic string) PushCertStatus {
	left := leaf.NotAfter.Sub(p.now())
	days := int(left / (24 * time.Hour))
	if left < 0 && left%(24*time.Hour) != 0 {
		days-- // whole days, rounded down: a minute past expiry is day -1
	}
	return PushCertStatus{Topic: topic, Serial: leaf.SerialNumber.Text(16), NotAfter: leaf.NotAfter.UTC(),
		DaysLeft: days, Expired: left <= 0, Warning: days <= PushCertWarnDays}
}

func (p *PushCerts) writeTopic(topic string) error {
	if p.db != nil {
		return nil // Topic reads the database
	}
	tmp, err := os.CreateTemp(p.dir, topicFile+".*")
	if err != nil {
		return fmt.Errorf("push certificate topic: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(topic + "\n"); err != nil {
		tmp.Close()
		return fmt.Errorf("push certificate topic: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("push certificate topic: %w", err)
	}
	// Renamed into place, so a reader sees the old topic or the new one.
	return os.Rename(tmp.Name(), filepath.Join(p.dir, topicFile))
}

func refuse(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrPushCert, fmt.Sprintf(format, args...))
}

// validate checks the pair and returns the leaf and the PEM nanomdm
// stores: only the certificate blocks and only the key block, so a
// combined file (openssl pkcs12 -nodes) may be given as both.
func (p *PushCerts) validate(certPEM, keyPEM []byte) (*x509.Certificate, []byte, []byte, error) {
	for _, f := range []struct {
		name string
		b    []byte
	}{{"certificate", certPEM}, {"key", keyPEM}} {
		if len(f.b) == 0 {
			return nil, nil, nil, refuse("the %s file is empty", f.name)
		}
		if len(f.b) > MaxPushCertPEM {
			return nil, nil, nil, refuse("the %s file is larger than %d bytes", f.name, MaxPushCertPEM)
		}
	}
	var certs []byte
	var keyBlock *pem.Block
	for rest := certPEM; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			certs = append(certs, pem.EncodeToMemory(&pem.Block{Type: b.Type, Bytes: b.Bytes})...)
		}
	}
	for rest := keyPEM; keyBlock == nil; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if strings.HasSuffix(b.Type, "PRIVATE KEY") {
			keyBlock = b
		}
	}
	if certs == nil {
		return nil, nil, nil, refuse("the certificate file holds no PEM CERTIFICATE block")
	}
	if keyBlock == nil {
		return nil, nil, nil, refuse("the key file holds no PEM private key")
	}
	if keyBlock.Type == "ENCRYPTED PRIVATE KEY" || strings.Contains(keyBlock.Headers["Proc-Type"], "ENCRYPTED") {
		return nil, nil, nil, refuse("the private key is encrypted: decrypt it first (openssl pkey -in KEY -out PLAIN)")
	}
	block, _ := pem.Decode(certs)
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, nil, nil, refuse("the certificate does not parse: %v", err)
	}
	priv, err := parseKey(keyBlock)
	if err != nil {
		return nil, nil, nil, refuse("the private key does not parse: %v", err)
	}
	if pub, ok := leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(priv.Public()) {
		return nil, nil, nil, refuse("the private key does not match the certificate")
	}
	key := pem.EncodeToMemory(&pem.Block{Type: keyBlock.Type, Bytes: keyBlock.Bytes})
	if _, err := tls.X509KeyPair(certs, key); err != nil {
		return nil, nil, nil, refuse("%v", err)
	}
	if _, err := cryptoutil.TopicFromCert(leaf); err != nil {
		return nil, nil, nil, refuse("%v (an APNs push certificate names a com.apple.mgmt topic in its subject's UID)", err)
	}
	now := p.now()
	if !now.Before(leaf.NotAfter) {
		return nil, nil, nil, refuse("it expired at %s: renew it at Apple's push certificates portal", timefmt.Human(leaf.NotAfter))
	}
	if now.Before(leaf.NotBefore) {
		return nil, nil, nil, refuse("it is not valid before %s", timefmt.Human(leaf.NotBefore))
	}
	return leaf, certs, key, nil
}

func parseKey(b *pem.Block) (crypto.Signer, error) {
	switch b.Type {
	case "RSA PRIVATE KEY":
		return x509.ParsePKCS1PrivateKey(b.Bytes)
	case "EC PRIVATE KEY":
		return x509.ParseECPrivateKey(b.Bytes)
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, err
	}
	switch k := k.(type) {
	case *rsa.PrivateKey:
		return k, nil
	case *ecdsa.PrivateKey:
		return k, nil
	}
	return nil, fmt.Errorf("a %T key, where APNs takes RSA or ECDSA", k)
}

// encodePair is a stored certificate back as the PEM Store takes.
func encodePair(c *tls.Certificate) ([]byte, []byte, error) {
	var certs []byte
	for _, der := range c.Certificate {
		certs = append(certs, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	der, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		return nil, nil, err
	}
	return certs, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}
