package apple

import (
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/smallstep/pkcs7"
	"howett.net/plist"
)

// Enrollment payload types (com.apple.security.root.yaml,
// com.apple.security.scep.yaml, com.apple.mdm.yaml).
const (
	typeRoot = "com.apple.security.root"
	typeSCEP = "com.apple.security.scep"
	typeMDM  = "com.apple.mdm"
)

// mdmAllRights is AccessRights with every bit from 1 (inspect profiles)
// to 4096 (install apps): Cordon queries, locks and wipes.
const mdmAllRights = 8191

// scepKeyUsage is 1 (signing) | 4 (encryption): the identity both signs
// the device's MDM messages and is used by TLS.
const scepKeyUsage = 5

// EnrollmentOptions describe one device's enrollment profile.
type EnrollmentOptions struct {
	// Host is the console's public host (and port, if not 443); SCEP is
	// at https://Host/scep and MDM at https://Host/mdm.
	Host string
	// Root is Cordon's root CA, installed so the device trusts the
	// console's TLS certificate.
	Root *x509.Certificate
	// Challenge is the one-time SCEP challenge minted for the token.
	Challenge string
	// Topic is the APNs push topic. It may be empty until Cordon holds an
	// APNs push certificate; a device refuses an MDM payload without one,
	// so such a profile only serves tests and inspection.
	Topic string
	// Organization is shown as the profile's PayloadOrganization.
	Organization string
	// Identifier is the reverse-DNS prefix of PayloadIdentifier. Default
	// DefaultIdentifier.
	Identifier string
	// UUID returns a new PayloadUUID. Default uuid.NewString.
	UUID func() string
}

type rootPayload struct {
	PayloadHeader
	PayloadContent []byte `plist:"PayloadContent"`
}

type scepContent struct {
	URL       string `plist:"URL"`
	Name      string `plist:"Name"`
	Challenge string `plist:"Challenge"`
	Keysize   int    `plist:"Keysize"`
	KeyType   string `plist:"Key Type"`
	KeyUsage  int    `plist:"Key Usage"`
}

type scepPayload struct {
	PayloadHeader
	PayloadContent scepContent `plist:"PayloadContent"`
}

type mdmPayload struct {
	PayloadHeader
	ServerURL               string `plist:"ServerURL"`
	CheckInURL              string `plist:"CheckInURL"`
	Topic                   string `plist:"Topic"`
	IdentityCertificateUUID string `plist:"IdentityCertificateUUID"`
	// SignMessage: Cordon's MDM endpoint authenticates each message by
	// the device's signature with its SCEP identity.
	SignMessage         bool `plist:"SignMessage"`
	AccessRights        int  `plist:"AccessRights"`
	CheckOutWhenRemoved bool `plist:"CheckOutWhenRemoved"`
}

// EnrollmentProfile renders the unsigned profile that enrolls an Apple
// device: Cordon's root CA, a SCEP payload for the device identity, and
// the MDM payload that uses that identity.
func EnrollmentProfile(o EnrollmentOptions) ([]byte, error) {
	if o.Host == "" || o.Root == nil || o.Challenge == "" {
		return nil, errors.New("apple: enrollment profile needs the host, the root CA and a challenge")
	}
	if o.Identifier == "" {
		o.Identifier = DefaultIdentifier
	}
	if o.UUID == nil {
		o.UUID = uuid.NewString
	}
	id := o.Identifier + ".enrollment"
	header := func(typ, suffix, name string) PayloadHeader {
		return PayloadHeader{PayloadType: typ, PayloadVersion: 1, PayloadIdentifier: id + "." + suffix,
			PayloadUUID: o.UUID(), PayloadDisplayName: name}
	}
	base := "https://" + o.Host
	scep := scepPayload{PayloadHeader: header(typeSCEP, "scep", "Device identity"),
		PayloadContent: scepContent{URL: base + "/scep", Name: "Cordon", Challenge: o.Challenge,
			Keysize: 2048, KeyType: "RSA", KeyUsage: scepKeyUsage}}
	content := []any{
		rootPayload{PayloadHeader: header(typeRoot, "root", "Cordon root CA"), PayloadContent: o.Root.Raw},
		scep,
		mdmPayload{PayloadHeader: header(typeMDM, "mdm", "Cordon MDM"), ServerURL: base + "/mdm",
			CheckInURL: base + "/mdm", Topic: o.Topic, IdentityCertificateUUID: scep.PayloadUUID,
			SignMessage: true, AccessRights: mdmAllRights, CheckOutWhenRemoved: true},
	}
	cfg := configuration{
		PayloadType: typeConfiguration, PayloadVersion: 1, PayloadIdentifier: id, PayloadUUID: o.UUID(),
		PayloadDisplayName: "Cordon enrollment", PayloadOrganization: o.Organization,
		PayloadDescription: "Enrolls this device in Cordon MDM.",
		// The user may remove it; CheckOutWhenRemoved tells Cordon.
		PayloadRemovalDisallowed: false, PayloadScope: "System", PayloadContent: content,
	}
	b, err := plist.MarshalIndent(cfg, plist.XMLFormat, "\t")
	if err != nil {
		return nil, fmt.Errorf("apple: enrollment profile: %w", err)
	}
	return b, nil
}

// Sign wraps a profile in CMS SignedData (SHA-256) by cert and key, with
// chain attached so the device can show who signed it.
func Sign(profile []byte, cert *x509.Certificate, key crypto.Signer, chain ...*x509.Certificate) ([]byte, error) {
	sd, err := pkcs7.NewSignedData(profile)
	if err != nil {
		return nil, err
	}
	sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
	if err := sd.AddSigner(cert, key, pkcs7.SignerInfoConfig{}); err != nil {
		return nil, fmt.Errorf("apple: sign profile: %w", err)
	}
	for _, c := range chain {
		sd.AddCertificate(c)
	}
	return sd.Finish()
}
