package applescep

import (
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/smallstep/pkcs7"
	"github.com/smallstep/scep"
)

// caps are the SCEP capabilities advertised (RFC 8894 3.5.2): AES and
// SHA-256 only, so that no client falls back to DES3 or SHA-1. No
// Renewal: an Apple identity is renewed by a new enrollment.
const caps = "AES\nSHA-256\nPOSTPKIOperation\nSCEPStandard\n"

// maxMessage bounds a PKIOperation body: a PKCSReq with an RSA-4096 CSR
// is a few kilobytes.
const maxMessage = 64 << 10

// SCEP's signed attributes (RFC 8894 3.2.1.2), for the replies built here.
var (
	oidMessageType    = asn1.ObjectIdentifier{2, 16, 840, 1, 113733, 1, 9, 2}
	oidPKIStatus      = asn1.ObjectIdentifier{2, 16, 840, 1, 113733, 1, 9, 3}
	oidFailInfo       = asn1.ObjectIdentifier{2, 16, 840, 1, 113733, 1, 9, 4}
	oidSenderNonce    = asn1.ObjectIdentifier{2, 16, 840, 1, 113733, 1, 9, 5}
	oidRecipientNonce = asn1.ObjectIdentifier{2, 16, 840, 1, 113733, 1, 9, 6}
	oidTransactionID  = asn1.ObjectIdentifier{2, 16, 840, 1, 113733, 1, 9, 7}
)

// ServeHTTP answers SCEP's GET and POST operations (GetCACaps, GetCACert,
// PKIOperation) on whatever path the service is mounted at.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	op := r.URL.Query().Get("operation")
	var ra *RA
	if op == "GetCACert" || op == "PKIOperation" {
		var err error
		if ra, err = s.ra(); err != nil {
			s.log.Error("SCEP", "err", err)
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
	}
	switch op {
	case "GetCACaps":
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, caps)
	case "GetCACert":
		// The RA first (clients encrypt to the certificate with key
		// encipherment), then the chain device certificates verify to.
		deg, err := scep.DegenerateCertificates([]*x509.Certificate{ra.Cert, s.ca.Intermediate(), s.ca.Root()})
		if err != nil {
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/x-x509-ca-ra-cert")
		w.Write(deg)
	case "PKIOperation":
		msg, err := readMessage(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rep, err := s.pkiOperation(r, ra, msg)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/x-pki-message")
		w.Write(rep)
	default:
		http.Error(w, fmt.Sprintf("unsupported SCEP operation %q", op), http.StatusBadRequest)
	}
}

func readMessage(r *http.Request) ([]byte, error) {
	if r.Method == http.MethodPost {
		b, err := io.ReadAll(io.LimitReader(r.Body, maxMessage+1))
		if err != nil {
			return nil, err
		}
		if len(b) > maxMessage {
			return nil, errors.New("SCEP message too large")
		}
		return b, nil
	}
	m := r.URL.Query().Get("message")
	if len(m) > maxMessage*4/3+4 {
		return nil, errors.New("SCEP message too large")
	}
	return base64.StdEncoding.DecodeString(m)
}

// pkiOperation answers one PKCSReq. A request that cannot be read gets
// an HTTP error; one that is read but refused (its challenge unknown,
// used or expired, its key unfit) gets a signed CertRep FAILURE, which is
// what SCEP clients show their user.
func (s *Service) pkiOperation(r *http.Request, ra *RA, data []byte) ([]byte, error) {
	msg, err := scep.ParsePKIMessage(data)
	if err != nil {
		return nil, fmt.Errorf("SCEP message: %w", err)
	}
	if msg.MessageType != scep.PKCSReq {
		return nil, fmt.Errorf("SCEP message type %s is not supported", msg.MessageType)
	}
	if err := msg.DecryptPKIEnvelope(ra.Cert, ra.Key); err != nil {
		return nil, fmt.Errorf("SCEP envelope: %w", err)
	}
	// The signer's certificate is the recipient of the reply; scep keeps
	// the parsed message to itself, so parse it again.
	p7, err := pkcs7.Parse(data)
	if err != nil || len(p7.Certificates) == 0 {
		return nil, errors.New("SCEP message without its signer's certificate")
	}
	issued, err := s.sign(r.Context(), msg.CSR, msg.ChallengePassword, r.RemoteAddr)
	if err != nil {
		return certRep(ra, msg, nil, nil)
	}
	deg, err := scep.DegenerateCertificates(issued.Chain[:1])
	if err != nil {
		return nil, err
	}
	env, err := pkcs7.Encrypt(deg, p7.Certificates[:1])
	if err != nil {
		return nil, fmt.Errorf("encrypt SCEP reply: %w", err)
	}
	return certRep(ra, msg, env, issued.Chain[0])
}

// certRep builds a CertRep signed by the RA with SHA-256: SUCCESS around
// env, the issued certificate encrypted to the requester, or FAILURE
// (badRequest, the one failInfo that does not tell a guesser which check
// failed) when env is nil.
func certRep(ra *RA, req *scep.PKIMessage, env []byte, issued *x509.Certificate) ([]byte, error) {
	attrs := []pkcs7.Attribute{
		{Type: oidTransactionID, Value: req.TransactionID},
		{Type: oidMessageType, Value: scep.CertRep},
		{Type: oidSenderNonce, Value: req.SenderNonce},
		{Type: oidRecipientNonce, Value: req.SenderNonce},
	}
	if env == nil {
		attrs = append(attrs, pkcs7.Attribute{Type: oidPKIStatus, Value: scep.FAILURE},
			pkcs7.Attribute{Type: oidFailInfo, Value: scep.BadRequest})
	} else {
		attrs = append(attrs, pkcs7.Attribute{Type: oidPKIStatus, Value: scep.SUCCESS})
	}
	sd, err := pkcs7.NewSignedData(env)
	if err != nil {
		return nil, err
	}
	sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
	if issued != nil {
		sd.AddCertificate(issued)
	}
	if err := sd.AddSigner(ra.Cert, ra.Key, pkcs7.SignerInfoConfig{ExtraSignedAttributes: attrs}); err != nil {
		return nil, fmt.Errorf("sign SCEP reply: %w", err)
	}
	return sd.Finish()
}
