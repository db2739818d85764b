// Package cryptarchive is Cordon's backup file format: an archive of
// files encrypted and authenticated as one stream, under a key derived
// from a passphrase.
//
// A file is a header, then the stream cut into chunks:
//
//	header  "CORDONBK" | version 1 | kdf 1 | iterations u32 | salt [32] |
//	        chunk size u32 | key check [32]
//	chunk   AES-256-GCM(key, random 96-bit nonce, plaintext,
//	        AAD = header | chunk counter u64 | final flag u8)
//
// PBKDF2-HMAC-SHA256 turns the passphrase and salt into a master secret;
// HKDF-SHA256 splits it into the AES key and the key check, so that a
// wrong passphrase is told apart from an altered file. Every chunk but the
// last holds exactly the chunk size; the last one is sealed with the
// final flag. The counter and the flag in the AAD make a reordered,
// dropped, truncated (at any chunk boundary) or extended file fail, and
// the header in the AAD makes an edited header fail. Nonces are random
// because FIPS 140-3 mode (GODEBUG=fips140=only) allows GCM only with
// nonces the module generates (cipher.NewGCMWithRandomNonce); the key is
// unique to each file anyway, through its random salt.
//
// The plaintext is a sequence of records: an info record (the writer's
// own JSON), one record per file (name, mode, size, content), and a
// manifest of every file's size and SHA-256, after which the stream must
// end. A Reader hands the files out as they come, so a caller extracts
// into a scratch place and trusts nothing until Next answers io.EOF:
// only then is every chunk authenticated and the manifest matched.
package cryptarchive

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

const (
	magic           = "CORDONBK"
	version         = 1
	kdfPBKDF2SHA256 = 1

	saltSize   = 32
	checkSize  = 32
	headerSize = len(magic) + 1 + 1 + 4 + saltSize + 4 + checkSize

	// DefaultIterations is PBKDF2's work factor: OWASP's 2023 figure for
	// PBKDF2-HMAC-SHA256, a fraction of a second per backup or restore.
	DefaultIterations = 600_000
	// MaxIterations bounds what a file may ask of a reader.
	MaxIterations = 10_000_000
	// DefaultChunkSize is the plaintext each chunk holds.
	DefaultChunkSize = 64 << 10
	minChunkSize     = 16
	maxChunkSize     = 16 << 20
)

// Errors a reader answers; callers show them as they are.
var (
	ErrNotArchive = errors.New("not a Cordon backup file")
	ErrPassphrase = errors.New("wrong passphrase for this backup file (or its header was altered)")
	ErrCorrupt    = errors.New("the backup file was altered, truncated or damaged: refusing it")
)

type header struct {
	iterations uint32
	salt       [saltSize]byte
	chunkSize  uint32
	check      [checkSize]byte
}

func (h *header) marshal() []byte {
	b := make([]byte, 0, headerSize)
	b = append(b, magic...)
	b = append(b, version, kdfPBKDF2SHA256)
	b = binary.BigEndian.AppendUint32(b, h.iterations)
	b = append(b, h.salt[:]...)
	b = binary.BigEndian.AppendUint32(b, h.chunkSize)
	return append(b, h.check[:]...)
}

// readHeader reads and checks the header's shape; the passphrase is
// checked by keys.
func readHeader(r io.Reader, maxIter uint32) (*header, []byte, error) {
	raw := make([]byte, headerSize)
	if n, err := io.ReadFull(r, raw); err != nil {
		if n >= len(magic) && string(raw[:len(magic)]) == magic {
			return nil, nil, fmt.Errorf("%w (its header is cut short)", ErrCorrupt)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, nil, ErrNotArchive
		}
		return nil, nil, err
	}
	if !bytes.Equal(raw[:len(magic)], []byte(magic)) {
		return nil, nil, ErrNotArchive
	}
	p := raw[len(magic):]
	if p[0] != version {
		return nil, nil, fmt.Errorf("backup file format version %d is not supported (this build reads version %d)", p[0], version)
	}
	if p[1] != kdfPBKDF2SHA256 {
		return nil, nil, fmt.Errorf("%w (unknown key derivation %d)", ErrCorrupt, p[1])
	}
	p = p[2:]
	h := &header{iterations: binary.BigEndian.Uint32(p)}
	p = p[4:]
	copy(h.salt[:], p)
	p = p[saltSize:]
	h.chunkSize = binary.BigEndian.Uint32(p)
	copy(h.check[:], p[4:])
	if h.iterations < 1 || h.iterations > maxIter {
		return nil, nil, fmt.Errorf("%w (key derivation asks %d iterations; at most %d are accepted)", ErrCorrupt, h.iterations, maxIter)
	}
	if h.chunkSize < minChunkSize || h.chunkSize > maxChunkSize {
		return nil, nil, fmt.Errorf("%w (chunk size %d)", ErrCorrupt, h.chunkSize)
	}
	return h, raw, nil
}

// keys derives the AES key and the key check from the passphrase.
func keys(passphrase string, h *header) (key, check []byte, err error) {
	master, err := pbkdf2.Key(sha256.New, passphrase, h.salt[:], int(h.iterations), 32)
	if err != nil {
		return nil, nil, err
	}
	if key, err = hkdf.Key(sha256.New, master, nil, "cordon backup aes-256-gcm key", 32); err != nil {
		return nil, nil, err
	}
	if check, err = hkdf.Key(sha256.New, master, nil, "cordon backup key check", checkSize); err != nil {
		return nil, nil, err
	}
	return key, check, nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCMWithRandomNonce(block)
}

// newHeader makes a header with a fresh salt and the AEAD it keys.
func newHeader(passphrase string, iterations, chunkSize int) (*header, cipher.AEAD, error) {
	h := &header{iterations: uint32(iterations), chunkSize: uint32(chunkSize)}
	rand.Read(h.salt[:]) // never fails (Go ≥ 1.24)
	key, check, err := keys(passphrase, h)
	if err != nil {
		return nil, nil, err
	}
	copy(h.check[:], check)
	a, err := newAEAD(key)
	return h, a, err
}

// openHeader derives the key of h, refusing a wrong passphrase.
func openHeader(passphrase string, h *header) (cipher.AEAD, error) {
	key, check, err := keys(passphrase, h)
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare(check, h.check[:]) != 1 {
		return nil, ErrPassphrase
	}
	return newAEAD(key)
}
