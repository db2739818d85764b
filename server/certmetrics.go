package server

import (
	"context"
	"crypto/x509"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cordon-mdm/cordon/internal/scrapemetric"
	"github.com/cordon-mdm/cordon/pki"
	"github.com/cordon-mdm/cordon/server/applemdm"
)

// certExpiryDesc is the certificate expiry horizon: an operator alerts
// on `cordon_certificate_expiry_timestamp_seconds - time()` before an
// expired CA cuts every agent off or an expired APNs certificate leaves
// every Apple device unreachable.
var certExpiryDesc = prometheus.NewDesc("cordon_certificate_expiry_timestamp_seconds",
	"NotAfter of the certificates Cordon depends on, as Unix seconds: server (console, API and gateway), "+
		"ca (root), ca_intermediate, device_nearest (soonest active device certificate), apns.",
	[]string{"certificate"}, nil)

// nearestDeviceCert is the store's read of the soonest-expiring active
// device certificate.
type nearestDeviceCert interface {
	NearestDeviceCertExpiry(ctx context.Context) (*time.Time, error)
}

// pushCertStatus is Apple MDM's stored APNs certificate.
type pushCertStatus interface {
	PushCertStatus(ctx context.Context) (applemdm.PushCertStatus, error)
}

// certCollector reads each certificate at scrape: the one being served
// (certSource re-issues it), the CA's, and the store's.
type certCollector struct {
	served  *certSource
	ca      *pki.CA
	devices nearestDeviceCert
	apns    pushCertStatus // nil without Apple MDM
}

func (c certCollector) read(ctx context.Context, emit scrapemetric.Emit) error {
	expires := func(name string, at time.Time) { emit(certExpiryDesc, float64(at.Unix()), name) }
	if leaf := c.served.current(); leaf != nil {
		expires("server", leaf.NotAfter)
	}
	expires("ca", c.ca.Root().NotAfter)
	expires("ca_intermediate", c.ca.Intermediate().NotAfter)
	at, err := c.devices.NearestDeviceCertExpiry(ctx)
	if err != nil {
		return err
	}
	if at != nil {
		expires("device_nearest", *at)
	}
	if c.apns == nil {
		return nil
	}
	switch st, err := c.apns.PushCertStatus(ctx); {
	case errors.Is(err, applemdm.ErrNoPushCert):
	case err != nil:
		return err
	default:
		expires("apns", st.NotAfter)
	}
	return nil
}

// current is the certificate being served, without renewing it (the
// next handshake does that); nil before the first.
func (c *certSource) current() *x509.Certificate {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cert == nil {
		return nil
	}
	return c.cert.Leaf
}

// certCollector is the expiry collector of this server's certificates.
func (s *Server) certCollector() prometheus.Collector {
	c := certCollector{served: s.certs, ca: s.CA, devices: s.Store}
	if s.AppleMDM != nil {
		c.apns = s.AppleMDM
	}
	return scrapemetric.Gauges(c.read, certExpiryDesc)
}
