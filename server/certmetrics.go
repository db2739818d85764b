package server

import (
	"context"
	"crypto/x509"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

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

func (c certCollector) Describe(ch chan<- *prometheus.Desc) { ch <- certExpiryDesc }

func (c certCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	emit := func(name string, at time.Time) {
		ch <- prometheus.MustNewConstMetric(certExpiryDesc, prometheus.GaugeValue, float64(at.Unix()), name)
	}
	if leaf := c.served.current(); leaf != nil {
		emit("server", leaf.NotAfter)
	}
	emit("ca", c.ca.Root().NotAfter)
	emit("ca_intermediate", c.ca.Intermediate().NotAfter)
	switch at, err := c.devices.NearestDeviceCertExpiry(ctx); {
	case err != nil:
		ch <- prometheus.NewInvalidMetric(certExpiryDesc, err)
	case at != nil:
		emit("device_nearest", *at)
	}
	if c.apns == nil {
		return
	}
	switch st, err := c.apns.PushCertStatus(ctx); {
	case errors.Is(err, applemdm.ErrNoPushCert):
	case err != nil:
		ch <- prometheus.NewInvalidMetric(certExpiryDesc, err)
	default:
		emit("apns", st.NotAfter)
	}
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
	return c
}
