package cryptarchive

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"path"
	"strings"
	"unicode/utf8"
)

// Record types of the plaintext stream.
const (
	recInfo     = 'I'
	recFile     = 'F'
	recManifest = 'M'

	maxInfo  = 1 << 20
	maxName  = 4096
	maxFiles = 1 << 20
)

// Entry is one file of an archive.
type Entry struct {
	Name   string // slash-separated, relative, clean
	Mode   fs.FileMode
	Size   int64
	SHA256 [32]byte // set once the content was read (and in Manifest)
}

// Option configures a Writer or a Reader.
type Option func(*config)

type config struct {
	iterations, chunkSize int
	maxIterations         uint32
	info                  []byte
}

// WithIterations sets PBKDF2's iteration count of a new archive (tests
// use few; the default is DefaultIterations).
func WithIterations(n int) Option { return func(c *config) { c.iterations = n } }

// WithChunkSize sets a new archive's chunk size (tests use small ones).
func WithChunkSize(n int) Option { return func(c *config) { c.chunkSize = n } }

// WithInfo sets the info record of a new archive: the writer's own
// description of what it holds (Reader.Info gives it back).
func WithInfo(b []byte) Option { return func(c *config) { c.info = b } }

// WithMaxIterations lowers the work a file may ask of a reader (the fuzz
// test), below MaxIterations.
func WithMaxIterations(n uint32) Option { return func(c *config) { c.maxIterations = n } }

func newConfig(opts []Option) config {
	c := config{iterations: DefaultIterations, chunkSize: DefaultChunkSize, maxIterations: MaxIterations}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// ValidName reports whether name may be an archive member: a clean,
// relative, slash-separated path that stays below the directory it is
// extracted into.
func ValidName(name string) bool {
	return name != "" && len(name) <= maxName && utf8.ValidString(name) && fs.ValidPath(name) && name != "." &&
		path.Clean(name) == name && !strings.ContainsAny(name, "\\\x00")
}

// Writer writes an archive.
type Writer struct {
	s     *sealer
	names map[string]bool
	files []Entry
	err   error
}

// NewWriter writes the header of a new archive to w, keyed by passphrase.
func NewWriter(w io.Writer, passphrase string, opts ...Option) (*Writer, error) {
	c := newConfig(opts)
	if c.iterations < 1 || c.iterations > MaxIterations || c.chunkSize < minChunkSize || c.chunkSize > maxChunkSize {
		return nil, errors.New("cryptarchive: iterations or chunk size out of range")
	}
	if len(c.info) > maxInfo {
		return nil, errors.New("cryptarchive: info record too large")
	}
	h, a, err := newHeader(passphrase, c.iterations, c.chunkSize)
	if err != nil {
		return nil, err
	}
	raw := h.marshal()
	if _, err := w.Write(raw); err != nil {
		return nil, err
	}
	aw := &Writer{s: &sealer{w: w, aead: a, header: raw, size: c.chunkSize, buf: make([]byte, 0, c.chunkSize)}, names: map[string]bool{}}
	rec := binary.BigEndian.AppendUint32([]byte{recInfo}, uint32(len(c.info)))
	if _, err := aw.s.Write(append(rec, c.info...)); err != nil {
		return nil, err
	}
	return aw, nil
}

// Add writes one file of size bytes read from r. It fails, and so does
// every later call, when r gives fewer or more bytes: a file that changed
// while it was read is not silently cut.
func (w *Writer) Add(name string, mode fs.FileMode, size int64, r io.Reader) error {
	if w.err != nil {
		return w.err
	}
	if !ValidName(name) {
		return fmt.Errorf("cryptarchive: invalid member name %q", name)
	}
	if w.names[name] || len(w.files) >= maxFiles || size < 0 {
		return fmt.Errorf("cryptarchive: %q added twice, or too many files", name)
	}
	w.names[name] = true
	rec := []byte{recFile}
	rec = appendName(rec, name)
	rec = binary.BigEndian.AppendUint32(rec, uint32(mode.Perm()))
	rec = binary.BigEndian.AppendUint64(rec, uint64(size))
	if _, err := w.s.Write(rec); err != nil {
		w.err = err
		return err
	}
	h := sha256.New()
	n, err := io.CopyN(io.MultiWriter(w.s, h), r, size)
	if err == nil {
		var one [1]byte
		if k, _ := r.Read(one[:]); k > 0 {
			err = fmt.Errorf("%s grew while it was read", name)
		}
	} else if errors.Is(err, io.EOF) {
		err = fmt.Errorf("%s shrank while it was read (%d of %d bytes)", name, n, size)
	}
	if err != nil {
		w.err = err
		return err
	}
	e := Entry{Name: name, Mode: mode.Perm(), Size: size}
	h.Sum(e.SHA256[:0])
	w.files = append(w.files, e)
	return nil
}

// Close writes the manifest and the final chunk; it does not close the
// underlying writer.
func (w *Writer) Close() error {
	if w.err != nil {
		return w.err
	}
	rec := binary.BigEndian.AppendUint32([]byte{recManifest}, uint32(len(w.files)))
	for _, e := range w.files {
		rec = appendName(rec, e.Name)
		rec = binary.BigEndian.AppendUint64(rec, uint64(e.Size))
		rec = append(rec, e.SHA256[:]...)
	}
	if _, err := w.s.Write(rec); err != nil {
		return err
	}
	w.err = errors.New("cryptarchive: writer closed")
	return w.s.close()
}

// Manifest is what was written so far.
func (w *Writer) Manifest() []Entry { return append([]Entry(nil), w.files...) }

func appendName(b []byte, name string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(name)))
	return append(b, name...)
}

// Reader reads an archive.
type Reader struct {
	r     *bufio.Reader
	info  []byte
	names map[string]bool
	seen  []Entry
	cur   *Entry
	left  int64
	h     hash.Hash
	done  bool
	err   error
}

// NewReader reads the header and the info record. A wrong passphrase is
// ErrPassphrase, a file that is not an archive ErrNotArchive, and a
// damaged one wraps ErrCorrupt.
func NewReader(r io.Reader, passphrase string, opts ...Option) (*Reader, error) {
	c := newConfig(opts)
	h, raw, err := readHeader(r, min(c.maxIterations, MaxIterations))
	if err != nil {
		return nil, err
	}
	a, err := openHeader(passphrase, h)
	if err != nil {
		return nil, err
	}
	ar := &Reader{r: bufio.NewReader(newOpener(r, a, raw, int(h.chunkSize))), names: map[string]bool{}}
	var t [1]byte
	if err := ar.full(t[:]); err != nil {
		return nil, err
	}
	if t[0] != recInfo {
		return nil, malformed("no info record")
	}
	n, err := ar.u32()
	if err != nil {
		return nil, err
	}
	if n > maxInfo {
		return nil, malformed("info record too large")
	}
	ar.info = make([]byte, n)
	if err := ar.full(ar.info); err != nil {
		return nil, err
	}
	return ar, nil
}

// Info is the writer's info record. It is authenticated only once Next
// has answered io.EOF.
func (r *Reader) Info() []byte { return r.info }

// Next finishes the current file and returns the next one, whose content
// Read then gives. After the last file it checks the manifest against
// what was read and that the archive ends there, and answers io.EOF:
// only then is the whole archive authenticated.
func (r *Reader) Next() (*Entry, error) {
	if r.err != nil {
		return nil, r.err
	}
	e, err := r.next()
	if err != nil {
		r.err = err
	}
	return e, err
}

func (r *Reader) next() (*Entry, error) {
	if r.done {
		return nil, io.EOF
	}
	if err := r.finish(); err != nil {
		return nil, err
	}
	var t [1]byte
	if err := r.full(t[:]); err != nil {
		return nil, err
	}
	switch t[0] {
	case recFile:
		name, err := r.name()
		if err != nil {
			return nil, err
		}
		mode, err := r.u32()
		if err != nil {
			return nil, err
		}
		size, err := r.u64()
		if err != nil {
			return nil, err
		}
		if r.names[name] || len(r.seen) >= maxFiles || size > 1<<62 || mode&^0o777 != 0 {
			return nil, malformed("member " + name)
		}
		r.names[name] = true
		r.cur = &Entry{Name: name, Mode: fs.FileMode(mode), Size: int64(size)}
		r.left, r.h = int64(size), sha256.New()
		e := *r.cur
		return &e, nil
	case recManifest:
		if err := r.manifest(); err != nil {
			return nil, err
		}
		r.done = true
		return nil, io.EOF
	}
	return nil, malformed(fmt.Sprintf("record type %d", t[0]))
}

// Read reads the current file's content.
func (r *Reader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if r.cur == nil || r.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, err := r.r.Read(p)
	r.h.Write(p[:n])
	r.left -= int64(n)
	if errors.Is(err, io.EOF) {
		err = fmt.Errorf("%w (it ends inside %s)", ErrCorrupt, r.cur.Name)
	}
	if err != nil {
		r.err = err
		return n, err
	}
	return n, nil
}

// Manifest is every file's name, size and SHA-256, once Next answered
// io.EOF.
func (r *Reader) Manifest() []Entry {
	if !r.done {
		return nil
	}
	return append([]Entry(nil), r.seen...)
}

// finish reads what is left of the current file and records its sum.
func (r *Reader) finish() error {
	if r.cur == nil {
		return nil
	}
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	if r.err != nil {
		return r.err
	}
	r.h.Sum(r.cur.SHA256[:0])
	r.seen = append(r.seen, *r.cur)
	r.cur = nil
	return nil
}

func (r *Reader) manifest() error {
	n, err := r.u32()
	if err != nil {
		return err
	}
	if int(n) != len(r.seen) {
		return malformed(fmt.Sprintf("the manifest lists %d files, the archive holds %d", n, len(r.seen)))
	}
	for i := range r.seen {
		name, err := r.name()
		if err != nil {
			return err
		}
		size, err := r.u64()
		if err != nil {
			return err
		}
		var sum [32]byte
		if err := r.full(sum[:]); err != nil {
			return err
		}
		if e := r.seen[i]; e.Name != name || uint64(e.Size) != size || e.SHA256 != sum {
			return malformed("the manifest does not match " + e.Name)
		}
	}
	var one [1]byte
	switch _, err := r.r.Read(one[:]); {
	case errors.Is(err, io.EOF):
		return nil
	case err != nil:
		return err
	}
	return malformed("data after the manifest")
}

func (r *Reader) full(p []byte) error {
	_, err := io.ReadFull(r.r, p)
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w (it ends before its manifest)", ErrCorrupt)
	}
	return err
}

func (r *Reader) u32() (uint32, error) {
	var b [4]byte
	err := r.full(b[:])
	return binary.BigEndian.Uint32(b[:]), err
}

func (r *Reader) u64() (uint64, error) {
	var b [8]byte
	err := r.full(b[:])
	return binary.BigEndian.Uint64(b[:]), err
}

func (r *Reader) name() (string, error) {
	var b [2]byte
	if err := r.full(b[:]); err != nil {
		return "", err
	}
	n := binary.BigEndian.Uint16(b[:])
	if n == 0 || n > maxName {
		return "", malformed("member name length")
	}
	buf := make([]byte, n)
	if err := r.full(buf); err != nil {
		return "", err
	}
	if !ValidName(string(buf)) {
		return "", malformed(fmt.Sprintf("member name %q", buf))
	}
	return string(buf), nil
}

func malformed(what string) error { return fmt.Errorf("%w (malformed: %s)", ErrCorrupt, what) }
