package ticketkeys

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"

	"github.com/cordon-mdm/cordon/internal/atomicfile"
)

// File keeps the keys of a single server process (SQLite) in one file
// of the data dir, mode 0600, rewritten whole and atomically on every
// change.
type File struct {
	path string
	mu   sync.Mutex
}

// NewFile stores the keys at path.
func NewFile(path string) *File { return &File{path: path} }

type fileKey struct {
	Epoch  int64  `json:"epoch"`
	Secret []byte `json:"secret"`
}

func (f *File) read() ([]Key, error) {
	st, err := os.Stat(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if st.Mode().Perm()&0o077 != 0 && !permissionsUnenforced {
		return nil, fmt.Errorf("%s is accessible by others (mode %v); refusing to use it", f.path, st.Mode().Perm())
	}
	b, err := os.ReadFile(f.path)
	if err != nil {
		return nil, err
	}
	var raw []fileKey
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("%s: %w", f.path, err)
	}
	keys := make([]Key, 0, len(raw))
	for _, r := range raw {
		if len(r.Secret) != 32 {
			return nil, fmt.Errorf("%s: key of epoch %d is %d bytes, want 32", f.path, r.Epoch, len(r.Secret))
		}
		k := Key{Epoch: r.Epoch}
		copy(k.Secret[:], r.Secret)
		keys = append(keys, k)
	}
	return keys, nil
}

func (f *File) write(keys []Key) error {
	raw := make([]fileKey, len(keys))
	for i, k := range keys {
		raw[i] = fileKey{Epoch: k.Epoch, Secret: k.Secret[:]}
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return err
	}
	return atomicfile.Write(f.path, b, 0o600)
}

// Keys implements Store.
func (f *File) Keys(_ context.Context, from int64) ([]Key, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	all, err := f.read()
	if err != nil {
		return nil, err
	}
	var out []Key
	for _, k := range all {
		if k.Epoch >= from {
			out = append(out, k)
		}
	}
	return out, nil
}

// Add implements Store.
func (f *File) Add(_ context.Context, k Key) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	all, err := f.read()
	if err != nil {
		return err
	}
	for _, h := range all {
		if h.Epoch == k.Epoch {
			return nil
		}
	}
	return f.write(append(all, k))
}

// Prune implements Store.
func (f *File) Prune(_ context.Context, before int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	all, err := f.read()
	if err != nil {
		return err
	}
	kept := all[:0]
	for _, k := range all {
		if k.Epoch >= before {
			kept = append(kept, k)
		}
	}
	if len(kept) == len(all) {
		return nil
	}
	return f.write(kept)
}
