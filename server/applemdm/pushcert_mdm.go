package applemdm

import (
	"context"
	"crypto/tls"
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
func (m *MDM) PushTopic(context.Context) (string, error) { return m.certs.Topic() }

// freshPushCerts is nanomdm's push certificate store in a dir, opened
// afresh on each read (see PushCerts.kv): a certificate the host command
// renewed is noticed at the next push, without a restart.
type freshPushCerts string

func (d freshPushCerts) IsPushCertStale(ctx context.Context, topic, staleToken string) (bool, error) {
	return diskv.New(string(d)).IsPushCertStale(ctx, topic, staleToken)
}

func (d freshPushCerts) RetrievePushCert(ctx context.Context, topic string) (*tls.Certificate, string, error) {
	return diskv.New(string(d)).RetrievePushCert(ctx, topic)
}
