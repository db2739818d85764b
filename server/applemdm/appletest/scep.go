package appletest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"testing"
	"time"

	"github.com/smallstep/pkcs7"
	"github.com/smallstep/scep"
	"github.com/smallstep/scep/x509util"
)

// SCEPResult is what one PKCSReq exchange came back with.
type SCEPResult struct {
	Status  scep.PKIStatus
	CACerts []*x509.Certificate // GetCACert's answer, the RA first
	Cert    *x509.Certificate   // on SUCCESS only
	Key     *rsa.PrivateKey
}

// SCEP does a SCEP client's GetCACert and PKCSReq with challenge against
// url (the server's /scep), built as Apple's SCEP payload does (RSA-2048,
// a self-signed signer certificate) but signed with SHA-256 and
// encrypted with AES. The key transport is smallstep/pkcs7's
// process-wide choice, which applescep.New sets (RSA-OAEP under
// fips140=only, where PKCS#1 v1.5 is refused): make the server first.
func SCEP(ctx context.Context, client *http.Client, url, challenge string) (*SCEPResult, error) {
	if client == nil {
		client = http.DefaultClient
	}
	do := func(req *http.Request, err error) ([]byte, error) {
		if err != nil {
			return nil, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("%s: %s %s", req.URL.Query().Get("operation"), resp.Status, b)
		}
		return b, err
	}
	b, err := do(http.NewRequestWithContext(ctx, http.MethodGet, url+"?operation=GetCACert", nil))
	if err != nil {
		return nil, err
	}
	cacerts, err := scep.CACerts(b)
	if err != nil {
		return nil, err
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	csrDER, err := x509util.CreateCertificateRequest(rand.Reader, &x509util.CertificateRequest{
		CertificateRequest: x509.CertificateRequest{Subject: pkix.Name{CommonName: "iPhone"}, SignatureAlgorithm: x509.SHA256WithRSA},
		ChallengePassword:  challenge}, key)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "iPhone"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour), SignatureAlgorithm: x509.SHA256WithRSA}
	selfDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	self, err := x509.ParseCertificate(selfDER)
	if err != nil {
		return nil, err
	}
	env7, err := pkcs7.Encrypt(csrDER, cacerts[:1])
	if err != nil {
		return nil, err
	}
	sd, err := pkcs7.NewSignedData(env7)
	if err != nil {
		return nil, err
	}
	sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
	nonce := make([]byte, 16)
	rand.Read(nonce)
	oid := func(n int) asn1.ObjectIdentifier { return asn1.ObjectIdentifier{2, 16, 840, 1, 113733, 1, 9, n} }
	if err := sd.AddSigner(self, key, pkcs7.SignerInfoConfig{ExtraSignedAttributes: []pkcs7.Attribute{
		{Type: oid(7), Value: scep.TransactionID("txn-" + rand.Text())}, {Type: oid(2), Value: scep.PKCSReq},
		{Type: oid(5), Value: scep.SenderNonce(nonce)}}}); err != nil {
		return nil, err
	}
	msg, err := sd.Finish()
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"?operation=PKIOperation", bytes.NewReader(msg))
	if err == nil {
		req.Header.Set("Content-Type", "application/x-pki-message")
	}
	body, err := do(req, err)
	if err != nil {
		return nil, err
	}
	rep, err := scep.ParsePKIMessage(body, scep.WithCACerts(cacerts[:1]))
	if err != nil {
		return nil, fmt.Errorf("CertRep: %w", err)
	}
	if !bytes.Equal(rep.RecipientNonce, nonce) {
		return nil, errors.New("CertRep does not answer the request's nonce")
	}
	res := &SCEPResult{Status: rep.PKIStatus, CACerts: cacerts, Key: key}
	if rep.PKIStatus != scep.SUCCESS {
		return res, nil
	}
	if err := rep.DecryptPKIEnvelope(self, key); err != nil {
		return nil, fmt.Errorf("decrypt CertRep: %w", err)
	}
	res.Cert = rep.CertRepMessage.Certificate
	return res, nil
}

// Enrolled returns a device whose identity it got through scepURL with
// challenge, as a device installing an enrollment profile does, ready
// to check in at mdmURL through client.
func Enrolled(t testing.TB, client *http.Client, scepURL, mdmURL, challenge, udid, productName string) *Device {
	t.Helper()
	res, err := SCEP(context.Background(), client, scepURL, challenge)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != scep.SUCCESS {
		t.Fatalf("SCEP enrollment: %s", res.Status)
	}
	return &Device{URL: mdmURL, Client: client, UDID: udid, ProductName: productName, Cert: res.Cert, Key: res.Key}
}
