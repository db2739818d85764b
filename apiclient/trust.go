package apiclient

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// ServerCAClient returns an *http.Client that trusts the Cordon server's
// own root CA and nothing else. It fetches the root from server's
// GET /ca.pem once and accepts it only if its SHA-256 fingerprint is
// fingerprint (what `cordon-server ca fingerprint` prints; colons and
// case do not matter). Pass the result to WithHTTPClient.
//
// The fetch itself cannot verify the server (the root is what it is
// fetching), so nothing it returns is trusted before the fingerprint
// matches; every later connection is verified as usual, server name
// included, against that root.
func ServerCAClient(ctx context.Context, server, fingerprint string) (*http.Client, error) {
	want := strings.ToLower(strings.NewReplacer(":", "", " ", "", "-", "").Replace(strings.TrimSpace(fingerprint)))
	if want == "" {
		return nil, errors.New("apiclient: no CA fingerprint to check the server's root against")
	}
	boot := transport(&tls.Config{InsecureSkipVerify: true}) // checked against the fingerprint below
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(server, "/")+"/ca.pem", nil)
	if err != nil {
		return nil, err
	}
	resp, err := (&http.Client{Transport: boot, Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("apiclient: fetch the server's CA: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("apiclient: fetch the server's CA: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("apiclient: fetch the server's CA: %s", resp.Status)
	}
	block, _ := pem.Decode(body)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("apiclient: /ca.pem holds no PEM certificate")
	}
	sum := sha256.Sum256(block.Bytes)
	if got := hex.EncodeToString(sum[:]); got != want {
		return nil, fmt.Errorf("apiclient: the server's root CA has fingerprint %s, not the expected %s", got, want)
	}
	root, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("apiclient: the server's root CA: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(root)
	return &http.Client{Transport: transport(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}), Timeout: 30 * time.Second}, nil
}

// transport is the default transport (proxy settings, timeouts) with cfg.
func transport(cfg *tls.Config) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = cfg
	return t
}
