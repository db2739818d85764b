package applemdm

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"time"

	"github.com/micromdm/nanomdm/storage/diskv"
)

// WithClock sets the clock push certificate expiry is judged by (tests:
// the 30-day warning without waiting eleven months).
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// StorePushCert validates and stores the agency's APNs push certificate
// (PushCerts.Store): pushes to devices of its topic use it at once.
func (m *MDM) StorePushCert(ctx context.Context, certPEM, keyPEM []byte, actor, source string) (PushCertStatus, error) {
	return m.certs.Store(ctx, certPEM, keyPEM, actor, source)
}

// PushCertStatus describes the stored push certificate, or ErrNoPushCert.
func (m *MDM) PushCertStatus(ctx context.Context) (PushCertStatus, error) { return m.certs.Status(ctx) }

// PushTopic is the stored push certificate's topic, which enrollment
// profiles carry, or ErrNoPushCert.
func (m *MDM) PushTopic(ctx context.Context) (string, error) { return m.certs.Topic(ctx) }

// freshPushCerts is nanomdm's push certificate store in a dir, opened
// afresh on each read (see PushCerts.kv): a certificate the host command
// renewed is noticed at the next push, without a restart. Its stale
// token covers the certificate as read, not only nanomdm's counter: the
// host command's files are written one by one, and a push that read the
// new counter with the old certificate would otherwise keep the old one.
type freshPushCerts string

func (d freshPushCerts) IsPushCertStale(ctx context.Context, topic, staleToken string) (bool, error) {
	_, token, err := d.RetrievePushCert(ctx, topic)
	if err != nil {
		return false, err
	}
	return token != staleToken, nil
}

func (d freshPushCerts) RetrievePushCert(ctx context.Context, topic string) (*tls.Certificate, string, error) {
	c, counter, err := diskv.New(string(d)).RetrievePushCert(ctx, topic)
	if err != nil {
		return nil, "", err
	}
	h := sha256.New()
	h.Write([]byte(counter))
	for _, der := range c.Certificate {
		h.Write(der)
	}
	return c, hex.EncodeToString(h.Sum(nil)), nil
}
