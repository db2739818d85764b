package ticketkeys

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/cordon-mdm/cordon/internal/atomicfile"
)

// Blobs is a table of opaque values by epoch, shared by every process
// on one database: the first value added for an epoch stays.
type Blobs interface {
	TicketKeyBlobs(ctx context.Context, from int64) (map[int64][]byte, error)
	AddTicketKeyBlob(ctx context.Context, epoch int64, blob []byte) error
	PruneTicketKeyBlobs(ctx context.Context, before int64) error
}

// Sealed is a Store over a shared database that holds each key sealed
// (AES-256-GCM, the epoch bound in as associated data) under a wrapping
// key from the data dir: reading the database alone does not let anyone
// forge a session ticket, which would pass for any device. Every process
// must therefore run on a copy of the same data dir.
type Sealed struct {
	blobs Blobs
	aead  cipher.AEAD
}

// ErrWrongWrapKey means a key in the database was sealed under another
// data dir's wrapping key.
var ErrWrongWrapKey = errors.New("ticketkeys: a key in the database was sealed under another data dir's wrapping key (copy the data dir's ticket-wrap.key to every server)")

// NewSealed seals keys in blobs under wrap (32 bytes).
func NewSealed(blobs Blobs, wrap []byte) (*Sealed, error) {
	block, err := aes.NewCipher(wrap)
	if err != nil {
		return nil, err
	}
	// A random nonce per seal: the FIPS-approved GCM construction.
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, err
	}
	return &Sealed{blobs: blobs, aead: aead}, nil
}

func epochAD(e int64) []byte {
	return binary.BigEndian.AppendUint64([]byte("cordon ticket key "), uint64(e))
}

// Keys implements Store.
func (s *Sealed) Keys(ctx context.Context, from int64) ([]Key, error) {
	blobs, err := s.blobs.TicketKeyBlobs(ctx, from)
	if err != nil {
		return nil, err
	}
	out := make([]Key, 0, len(blobs))
	for e, b := range blobs {
		plain, err := s.aead.Open(nil, nil, b, epochAD(e))
		if err != nil || len(plain) != 32 {
			return nil, ErrWrongWrapKey
		}
		k := Key{Epoch: e}
		copy(k.Secret[:], plain)
		out = append(out, k)
	}
	return out, nil
}

// Add implements Store.
func (s *Sealed) Add(ctx context.Context, k Key) error {
	return s.blobs.AddTicketKeyBlob(ctx, k.Epoch, s.aead.Seal(nil, nil, k.Secret[:], epochAD(k.Epoch)))
}

// Prune implements Store.
func (s *Sealed) Prune(ctx context.Context, before int64) error {
	return s.blobs.PruneTicketKeyBlobs(ctx, before)
}

// WrapKey reads the 32-byte wrapping key at path, making it (0600) when
// there is none. Two processes starting together on one data dir agree:
// only one creation succeeds, and the other reads its key.
func WrapKey(path string) ([]byte, error) {
	for range 2 {
		b, err := readPrivate(path)
		if err == nil {
			if len(b) != 32 {
				return nil, fmt.Errorf("%s: %d bytes, want 32", path, len(b))
			}
			return b, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		key := make([]byte, 32)
		rand.Read(key)
		if err := atomicfile.Create(path, key, 0o600); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
	}
	return nil, fmt.Errorf("%s: not readable after creation", path)
}

func readPrivate(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Mode().Perm()&0o077 != 0 && !permissionsUnenforced {
		return nil, fmt.Errorf("%s is accessible by others (mode %v); refusing to use it", path, st.Mode().Perm())
	}
	return os.ReadFile(path)
}
