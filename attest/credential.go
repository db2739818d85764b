package attest

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"fmt"
	"io"

	"github.com/google/go-tpm/tpm2"
)

// MakeCredential is TPM2_MakeCredential done in software (TPM 2.0 Part 1,
// "Credential Protection"): it protects secret for the object named name
// under the endorsement key ek, so that only the TPM holding both can
// recover it with TPM2_ActivateCredential. It returns the
// TPM2B_ID_OBJECT's contents and the encrypted seed.
//
// It is go-tpm's tpm2.CreateCredential rebuilt from go-tpm's exported
// pieces because that function encrypts with cipher.NewCFBEncrypter,
// which Go refuses under GODEBUG=fips140=only (CFB is not an approved
// mode of the FIPS module's API), and the server must attest devices in
// its FIPS build too. The seed's encapsulation (RSA-OAEP or ECDH with
// KDFe), KDFa and the HMAC are go-tpm's and approved; the one thing
// replaced is the mode: CFB-128 (SP 800-38A 6.3) written out over the
// FIPS module's AES block cipher, with the zero IV that Part 1 specifies
// for the credential. A unit test compares the output with
// tpm2.CreateCredential's for the same randomness, and the swtpm tests
// activate it in a real TPM.
func MakeCredential(rand io.Reader, ek *tpm2.TPMTPublic, name, secret []byte) (idObject, encSecret []byte, err error) {
	key, err := tpm2.ImportEncapsulationKey(ek)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: EK: %v", ErrEvidence, err)
	}
	sym := key.SymmetricParameters()
	if sym.Algorithm != tpm2.TPMAlgAES {
		return nil, nil, fmt.Errorf("%w: EK protects with %v, not AES", ErrEvidence, sym.Algorithm)
	}
	if mode, err := sym.Mode.AES(); err != nil || *mode != tpm2.TPMAlgCFB {
		return nil, nil, fmt.Errorf("%w: EK's symmetric mode is not CFB", ErrEvidence)
	}
	bits, err := sym.KeyBits.AES()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: EK key bits: %v", ErrEvidence, err)
	}
	h, err := key.NameAlg().Hash()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: EK name algorithm: %v", ErrEvidence, err)
	}
	seed, encSecret, err := key.Encapsulate(rand, "IDENTITY")
	if err != nil {
		return nil, nil, err
	}
	idObject, err = protect(h, int(*bits), seed, name, secret)
	return idObject, encSecret, err
}

// protect makes the TPMS_ID_OBJECT for secret from the encapsulated seed:
// the credential (a TPM2B_DIGEST, its size included) encrypted with
// KDFa(seed, "STORAGE", name), and an HMAC over it and name with
// KDFa(seed, "INTEGRITY").
func protect(h crypto.Hash, bits int, seed, name, secret []byte) ([]byte, error) {
	block, err := aes.NewCipher(tpm2.KDFa(h, seed, "STORAGE", name, nil, bits))
	if err != nil {
		return nil, err
	}
	encIdentity := cfb128(block, tpm2.Marshal(tpm2.TPM2BDigest{Buffer: secret}))
	mac := hmac.New(h.New, tpm2.KDFa(h, seed, "INTEGRITY", nil, nil, h.Size()*8))
	mac.Write(encIdentity)
	mac.Write(name)
	return append(tpm2.Marshal(tpm2.TPM2BDigest{Buffer: mac.Sum(nil)}), encIdentity...), nil
}

// cfb128 encrypts plain in CFB mode with a full-block segment and a zero
// IV: each keystream block is the encryption of the previous ciphertext
// block (the IV for the first); a final partial block uses what of its
// keystream it needs.
func cfb128(b cipher.Block, plain []byte) []byte {
	n := b.BlockSize()
	out := make([]byte, len(plain))
	reg := make([]byte, n)
	ks := make([]byte, n)
	for i := 0; i < len(plain); i += n {
		b.Encrypt(ks, reg)
		end := min(i+n, len(plain))
		for j := i; j < end; j++ {
			out[j] = plain[j] ^ ks[j-i]
		}
		copy(reg, out[i:end])
	}
	return out
}
