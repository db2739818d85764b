package keystore

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"github.com/cordon-mdm/cordon/attest"
	"github.com/cordon-mdm/cordon/internal/atomicfile"
)

// Opener reaches a TPM. The TPM store opens it for each key operation and
// closes it after, so no handle outlives an operation: the resource
// manager (or swtpm's connection end) cannot be left holding our objects,
// and a TPM reset between operations costs nothing.
type Opener func() (transport.TPMCloser, error)

// ErrNoTPM means this device has no TPM the agent can open.
var ErrNoTPM = errors.New("no TPM 2.0 available")

// Blob file names in the state dir. The private blob is encrypted by the
// parent's seed, which never leaves the TPM: it loads only into the TPM
// that created it.
const (
	tpmPublicFile  = "tpm-key.pub"
	tpmPrivateFile = "tpm-key.priv"
)

// TPM keeps an ECDSA P-256 key inside a TPM 2.0. The key is created in
// the TPM under the owner hierarchy's standard ECC SRK (TCG provisioning
// guidance template, so the same SRK is recreated deterministically from
// the TPM's owner seed on every use); only its public area and its
// SRK-wrapped private area are written to Dir.
type TPM struct {
	// Dir is where the blobs live (the agent's state dir).
	Dir string
	// Open reaches the TPM: OpenPlatform, or swtpm in development.
	Open Opener
	// Existing forbids creating the key, as File.Existing.
	Existing bool
}

// Kind implements Store.
func (t TPM) Kind() string { return "tpm" }

// KeyTemplate is the identity key's public template (attest.KeyTemplate:
// the server checks a certified key against the same one).
func KeyTemplate() tpm2.TPMTPublic { return attest.KeyTemplate() }

// Signer implements Store: it loads the key from the blobs, creating it
// on first use. Loading is tried each time so that blobs copied from
// another machine fail here, plainly, rather than at the first handshake.
func (t TPM) Signer() (crypto.Signer, error) {
	if t.Open == nil {
		return nil, ErrNoTPM
	}
	pub, priv, err := t.readBlobs()
	if errors.Is(err, os.ErrNotExist) {
		if t.Existing {
			return nil, fmt.Errorf("%s: %w", t.Dir, ErrKeyGone)
		}
		return t.create()
	}
	if err != nil {
		return nil, err
	}
	s, err := newSigner(t.Open, pub, priv)
	if err != nil {
		return nil, err
	}
	// A load proves the blobs belong to this TPM.
	if err := s.withKey(func(transport.TPM, tpm2.NamedHandle) error { return nil }); errors.Is(err, ErrNoTPM) {
		return nil, err
	} else if err != nil {
		return nil, fmt.Errorf("TPM key in %s does not load into this TPM (copied from another device?): %w", t.Dir, err)
	}
	return s, nil
}

func (t TPM) create() (crypto.Signer, error) {
	tpm, err := retrying(t.Open)()
	if err != nil {
		return nil, fmt.Errorf("open TPM: %w", err)
	}
	defer tpm.Close()
	srk, err := createSRK(tpm)
	if err != nil {
		return nil, err
	}
	defer flush(tpm, srk.Handle)
	rsp, err := tpm2.Create{ParentHandle: srk, InPublic: tpm2.New2B(KeyTemplate())}.Execute(tpm)
	if err != nil {
		return nil, fmt.Errorf("TPM2_Create identity key: %w", err)
	}
	pub, priv := tpm2.Marshal(rsp.OutPublic), tpm2.Marshal(rsp.OutPrivate)
	// The public half is written last: its presence means the pair is
	// whole (a crash between the writes leaves a private blob alone,
	// which readBlobs reports as missing and create replaces).
	if err := atomicfile.Write(filepath.Join(t.Dir, tpmPrivateFile), priv, 0o600); err != nil {
		return nil, err
	}
	if err := atomicfile.Write(filepath.Join(t.Dir, tpmPublicFile), pub, 0o600); err != nil {
		return nil, err
	}
	return newSigner(t.Open, pub, priv)
}

// Destroy implements Store. The key exists outside the TPM only as these
// blobs, and no handle of it survives an operation, so deleting them
// means the TPM can never load it again.
func (t TPM) Destroy() error {
	var errs []error
	for _, f := range []string{tpmPublicFile, tpmPrivateFile} {
		p := filepath.Join(t.Dir, f)
		// Overwrite before removing, so the blocks do not keep the
		// blobs: useless on any other TPM, they would still load on
		// this one if recovered from the disk.
		if st, err := os.Stat(p); err == nil {
			os.WriteFile(p, make([]byte, st.Size()), 0o600)
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Present reports whether the blobs exist (a TPM key was made here).
func (t TPM) Present() bool {
	_, err := os.Stat(filepath.Join(t.Dir, tpmPublicFile))
	return err == nil
}

func (t TPM) readBlobs() (pub, priv []byte, err error) {
	if pub, err = os.ReadFile(filepath.Join(t.Dir, tpmPublicFile)); err != nil {
		return nil, nil, err
	}
	if priv, err = os.ReadFile(filepath.Join(t.Dir, tpmPrivateFile)); err != nil {
		return nil, nil, err
	}
	return pub, priv, nil
}

// createSRK recreates the owner hierarchy's ECC SRK. CreatePrimary is
// deterministic for a given seed and template, so this is the same key
// every time on this TPM, and a different one on any other.
func createSRK(tpm transport.TPM) (tpm2.NamedHandle, error) {
	rsp, err := tpm2.CreatePrimary{PrimaryHandle: tpm2.TPMRHOwner, InPublic: tpm2.New2B(tpm2.ECCSRKTemplate)}.Execute(tpm)
	if err != nil {
		return tpm2.NamedHandle{}, fmt.Errorf("TPM2_CreatePrimary SRK: %w", err)
	}
	return tpm2.NamedHandle{Handle: rsp.ObjectHandle, Name: rsp.Name}, nil
}

// retrying wraps open so that commands the TPM asks to have sent again
// (TPM_RC_RETRY, YIELDED, TESTING: busy, not refusing) are, a bounded
// number of times. swtpm and real TPMs both answer RETRY now and then.
func retrying(open Opener) Opener {
	return func() (transport.TPMCloser, error) {
		t, err := open()
		if err != nil {
			return nil, err
		}
		return retrier{t}, nil
	}
}

type retrier struct{ transport.TPMCloser }

func (r retrier) Send(cmd []byte) ([]byte, error) {
	for i := 1; ; i++ {
		rsp, err := r.TPMCloser.Send(cmd)
		if err != nil || len(rsp) < 10 || i == 20 {
			return rsp, err
		}
		switch tpm2.TPMRC(binary.BigEndian.Uint32(rsp[6:10])) {
		case tpm2.TPMRCRetry, tpm2.TPMRCYielded, tpm2.TPMRCTesting:
			time.Sleep(time.Duration(i) * 5 * time.Millisecond)
		default:
			return rsp, nil
		}
	}
}

func flush(tpm transport.TPM, h tpm2.TPMHandle) {
	tpm2.FlushContext{FlushHandle: h}.Execute(tpm)
}

// tpmSigner signs inside the TPM. It holds only the blobs and the public
// key; each Sign loads the key, signs and flushes it.
type tpmSigner struct {
	open Opener
	pub  tpm2.TPM2BPublic
	priv tpm2.TPM2BPrivate
	key  *ecdsa.PublicKey
}

func newSigner(open Opener, pubBlob, privBlob []byte) (*tpmSigner, error) {
	pub, err := tpm2.Unmarshal[tpm2.TPM2BPublic](pubBlob)
	if err != nil {
		return nil, fmt.Errorf("TPM public blob: %w", err)
	}
	priv, err := tpm2.Unmarshal[tpm2.TPM2BPrivate](privBlob)
	if err != nil {
		return nil, fmt.Errorf("TPM private blob: %w", err)
	}
	key, err := publicKey(pub)
	if err != nil {
		return nil, err
	}
	return &tpmSigner{open: retrying(open), pub: *pub, priv: *priv, key: key}, nil
}

// publicKey is the ECDSA key in a public area, refusing anything but the
// template's kind of key so a substituted blob cannot change what we sign.
func publicKey(b *tpm2.TPM2BPublic) (*ecdsa.PublicKey, error) {
	p, err := b.Contents()
	if err != nil {
		return nil, fmt.Errorf("TPM public area: %w", err)
	}
	want := KeyTemplate().ObjectAttributes
	if p.Type != tpm2.TPMAlgECC || p.ObjectAttributes != want {
		return nil, errors.New("TPM public area is not a fixed, non-exportable ECC signing key")
	}
	parms, err := p.Parameters.ECCDetail()
	if err != nil || parms.CurveID != tpm2.TPMECCNistP256 {
		return nil, errors.New("TPM key is not on P-256")
	}
	pt, err := p.Unique.ECC()
	if err != nil {
		return nil, err
	}
	if len(pt.X.Buffer) > 32 || len(pt.Y.Buffer) > 32 {
		return nil, errors.New("TPM key: bad point")
	}
	raw := make([]byte, 65)
	raw[0] = 4
	copy(raw[1+32-len(pt.X.Buffer):33], pt.X.Buffer)
	copy(raw[33+32-len(pt.Y.Buffer):], pt.Y.Buffer)
	// ParseUncompressedPublicKey checks the point is on the curve.
	return ecdsa.ParseUncompressedPublicKey(elliptic.P256(), raw)
}

// Public implements crypto.Signer.
func (s *tpmSigner) Public() crypto.PublicKey { return s.key }

// Sign implements crypto.Signer: an ASN.1 DER ECDSA signature of a
// SHA-256 digest, made by the TPM. The key's scheme is fixed to SHA-256
// (TLS 1.3's ecdsa_secp256r1_sha256), so other hashes are refused here
// rather than by the TPM.
func (s *tpmSigner) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts == nil || opts.HashFunc() != crypto.SHA256 {
		var h crypto.Hash
		if opts != nil {
			h = opts.HashFunc()
		}
		return nil, fmt.Errorf("TPM key signs SHA-256 digests only, not %v", h)
	}
	if len(digest) != 32 {
		return nil, fmt.Errorf("TPM key: digest is %d bytes, SHA-256 is 32", len(digest))
	}
	var sig []byte
	err := s.withKey(func(tpm transport.TPM, key tpm2.NamedHandle) error {
		rsp, err := tpm2.Sign{KeyHandle: key, Digest: tpm2.TPM2BDigest{Buffer: digest},
			InScheme:   tpm2.TPMTSigScheme{Scheme: tpm2.TPMAlgNull},
			Validation: tpm2.TPMTTKHashCheck{Tag: tpm2.TPMSTHashCheck, Hierarchy: tpm2.TPMRHNull}}.Execute(tpm)
		if err != nil {
			return fmt.Errorf("TPM2_Sign: %w", err)
		}
		ec, err := rsp.Signature.Signature.ECDSA()
		if err != nil {
			return err
		}
		sig, err = asn1.Marshal(struct{ R, S *big.Int }{
			new(big.Int).SetBytes(ec.SignatureR.Buffer), new(big.Int).SetBytes(ec.SignatureS.Buffer)})
		return err
	})
	return sig, err
}

// withKey opens the TPM, loads the key, runs f, and flushes the key.
func (s *tpmSigner) withKey(f func(transport.TPM, tpm2.NamedHandle) error) error {
	tpm, err := s.open()
	if err != nil {
		return fmt.Errorf("open TPM: %w", err)
	}
	defer tpm.Close()
	key, err := loadKey(tpm, s.pub, s.priv)
	if err != nil {
		return err
	}
	defer flush(tpm, key.Handle)
	return f(tpm, key)
}

// loadKey loads blobs under the SRK. The SRK is flushed as soon as the
// key is in: a loaded key needs no parent, and TPMs hold only a few
// objects at once.
func loadKey(tpm transport.TPM, pub tpm2.TPM2BPublic, priv tpm2.TPM2BPrivate) (tpm2.NamedHandle, error) {
	srk, err := createSRK(tpm)
	if err != nil {
		return tpm2.NamedHandle{}, err
	}
	defer flush(tpm, srk.Handle)
	rsp, err := tpm2.Load{ParentHandle: srk, InPublic: pub, InPrivate: priv}.Execute(tpm)
	if err != nil {
		return tpm2.NamedHandle{}, fmt.Errorf("TPM2_Load identity key: %w", err)
	}
	return tpm2.NamedHandle{Handle: rsp.ObjectHandle, Name: rsp.Name}, nil
}
