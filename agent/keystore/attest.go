package keystore

import (
	"errors"
	"fmt"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"github.com/cordon-mdm/cordon/attest"
)

// Attesting is a store that can show the server its key lives in a TPM
// (the TPM store). The enrollment asks a store for it by assertion, so a
// file store simply has none.
type Attesting interface {
	Evidence() (*Evidence, error)
}

// Evidence is the first half of an attested enrollment: the TPM's EK
// (with its certificate from NV, when the manufacturer provisioned one)
// and an attestation key made for this enrollment under the SRK. The AK
// lives only in memory, as its blobs, until Answer.
type Evidence struct {
	EKCert, EKPublic, AKPublic []byte

	store      TPM
	ekTemplate tpm2.TPMTPublic
	akPub      tpm2.TPM2BPublic
	akPriv     tpm2.TPM2BPrivate
}

// Evidence implements Attesting.
func (t TPM) Evidence() (*Evidence, error) {
	if t.Open == nil {
		return nil, ErrNoTPM
	}
	tpm, err := retrying(t.Open)()
	if err != nil {
		return nil, fmt.Errorf("open TPM: %w", err)
	}
	defer tpm.Close()
	e := &Evidence{store: t, ekTemplate: tpm2.RSAEKTemplate}
	// The EK is the one the certificate is for; without a certificate,
	// the RSA EK, which every TPM 2.0 has.
	if cert, err := readNV(tpm, attest.RSAEKCertIndex); err == nil {
		e.EKCert = cert
	} else if cert, err := readNV(tpm, attest.ECCEKCertIndex); err == nil {
		e.EKCert, e.ekTemplate = cert, tpm2.ECCEKTemplate
	}
	ek, err := createEK(tpm, e.ekTemplate)
	if err != nil {
		return nil, err
	}
	flush(tpm, ek.handle.Handle)
	e.EKPublic = ek.public
	srk, err := createSRK(tpm)
	if err != nil {
		return nil, err
	}
	defer flush(tpm, srk.Handle)
	rsp, err := tpm2.Create{ParentHandle: srk, InPublic: tpm2.New2B(attest.AKTemplate())}.Execute(tpm)
	if err != nil {
		return nil, fmt.Errorf("TPM2_Create attestation key: %w", err)
	}
	e.akPub, e.akPriv = rsp.OutPublic, rsp.OutPrivate
	e.AKPublic = rsp.OutPublic.Bytes()
	return e, nil
}

type loadedEK struct {
	handle tpm2.NamedHandle
	public []byte // TPMT_PUBLIC
}

func createEK(tpm transport.TPM, tmpl tpm2.TPMTPublic) (loadedEK, error) {
	rsp, err := tpm2.CreatePrimary{PrimaryHandle: tpm2.TPMRHEndorsement, InPublic: tpm2.New2B(tmpl)}.Execute(tpm)
	if err != nil {
		return loadedEK{}, fmt.Errorf("TPM2_CreatePrimary EK: %w", err)
	}
	return loadedEK{tpm2.NamedHandle{Handle: rsp.ObjectHandle, Name: rsp.Name}, rsp.OutPublic.Bytes()}, nil
}

// nvChunk is below every TPM's TPM_PT_NV_BUFFER_MAX (at least 512 in
// the PC Client profile).
const nvChunk = 512

// readNV reads a whole NV index, authorising with the index's own
// (empty) auth where it allows that, as EK certificate indices do, else
// the owner's.
func readNV(tpm transport.TPM, index tpm2.TPMHandle) ([]byte, error) {
	pub, err := tpm2.NVReadPublic{NVIndex: index}.Execute(tpm)
	if err != nil {
		return nil, err
	}
	info, err := pub.NVPublic.Contents()
	if err != nil {
		return nil, err
	}
	nv := tpm2.NamedHandle{Handle: index, Name: pub.NVName}
	var auth tpm2.AuthHandle
	switch {
	case info.Attributes.AuthRead:
		auth = tpm2.AuthHandle{Handle: index, Name: pub.NVName, Auth: tpm2.PasswordAuth(nil)}
	case info.Attributes.OwnerRead:
		auth = tpm2.AuthHandle{Handle: tpm2.TPMRHOwner, Auth: tpm2.PasswordAuth(nil)}
	default:
		return nil, errors.New("NV index is not readable")
	}
	var out []byte
	for off := 0; off < int(info.DataSize); off += nvChunk {
		n := min(nvChunk, int(info.DataSize)-off)
		rsp, err := tpm2.NVRead{AuthHandle: auth, NVIndex: nv, Size: uint16(n), Offset: uint16(off)}.Execute(tpm)
		if err != nil {
			return nil, fmt.Errorf("TPM2_NV_Read %#x: %w", uint32(index), err)
		}
		out = append(out, rsp.Data.Buffer...)
	}
	return out, nil
}

// Answer is the second half: the TPM activates the server's credential
// with the EK (authorised by PolicySecret(TPM_RH_ENDORSEMENT), the EK
// template's policy), which it does only if the AK named in it is loaded
// in this same TPM, then certifies the identity key with the AK over the
// server's nonce.
func (e *Evidence) Answer(credential, encSecret, nonce []byte) ([]byte, attest.Certification, error) {
	var none attest.Certification
	keyPub, keyPriv, err := e.store.readBlobs()
	if err != nil {
		return nil, none, fmt.Errorf("identity key blobs: %w", err)
	}
	s, err := newSigner(e.store.Open, keyPub, keyPriv)
	if err != nil {
		return nil, none, err
	}
	tpm, err := retrying(e.store.Open)()
	if err != nil {
		return nil, none, fmt.Errorf("open TPM: %w", err)
	}
	defer tpm.Close()
	ak, err := loadKey(tpm, e.akPub, e.akPriv)
	if err != nil {
		return nil, none, fmt.Errorf("attestation key: %w", err)
	}
	defer flush(tpm, ak.Handle)
	secret, err := activate(tpm, e.ekTemplate, ak, credential, encSecret)
	if err != nil {
		return nil, none, err
	}
	// The EK is flushed by now: a TPM holds as few as three objects, and
	// the identity key needs the SRK for a moment to load.
	key, err := loadKey(tpm, s.pub, s.priv)
	if err != nil {
		return nil, none, err
	}
	defer flush(tpm, key.Handle)
	rsp, err := tpm2.Certify{
		ObjectHandle:   tpm2.AuthHandle{Handle: key.Handle, Name: key.Name, Auth: tpm2.PasswordAuth(nil)},
		SignHandle:     tpm2.AuthHandle{Handle: ak.Handle, Name: ak.Name, Auth: tpm2.PasswordAuth(nil)},
		QualifyingData: tpm2.TPM2BData{Buffer: nonce},
		InScheme:       tpm2.TPMTSigScheme{Scheme: tpm2.TPMAlgNull},
	}.Execute(tpm)
	if err != nil {
		return nil, none, fmt.Errorf("TPM2_Certify identity key: %w", err)
	}
	return secret, attest.Certification{CertifyInfo: rsp.CertifyInfo.Bytes(),
		Signature: tpm2.Marshal(rsp.Signature), KeyPublic: s.pub.Bytes()}, nil
}

func activate(tpm transport.TPM, tmpl tpm2.TPMTPublic, ak tpm2.NamedHandle, credential, encSecret []byte) ([]byte, error) {
	ek, err := createEK(tpm, tmpl)
	if err != nil {
		return nil, err
	}
	defer flush(tpm, ek.handle.Handle)
	ekArea, err := tpm2.Unmarshal[tpm2.TPMTPublic](ek.public)
	if err != nil {
		return nil, err
	}
	// The policy session is salted to the EK. Its HMAC proves nothing the
	// policy does not, but go-tpm computes one with (session key || auth)
	// as the key, and unsalted that key is empty, which Go's HMAC refuses
	// under fips140=only: the salt gives it a 256-bit session key.
	policy := tpm2.Policy(tpm2.TPMAlgSHA256, 16, func(tpm transport.TPM, h tpm2.TPMISHPolicy, nonceTPM tpm2.TPM2BNonce) error {
		_, err := tpm2.PolicySecret{AuthHandle: tpm2.TPMRHEndorsement, PolicySession: h, NonceTPM: nonceTPM}.Execute(tpm)
		return err
	}, tpm2.Salted(ek.handle.Handle, *ekArea))
	rsp, err := tpm2.ActivateCredential{
		ActivateHandle: tpm2.AuthHandle{Handle: ak.Handle, Name: ak.Name, Auth: tpm2.PasswordAuth(nil)},
		KeyHandle:      tpm2.AuthHandle{Handle: ek.handle.Handle, Name: ek.handle.Name, Auth: policy},
		CredentialBlob: tpm2.TPM2BIDObject{Buffer: credential},
		Secret:         tpm2.TPM2BEncryptedSecret{Buffer: encSecret},
	}.Execute(tpm)
	if err != nil {
		return nil, fmt.Errorf("TPM2_ActivateCredential: %w", err)
	}
	return rsp.CertInfo.Buffer, nil
}
