package cryptarchive

import (
	"bufio"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// aad is what each chunk is bound to: the whole header, its position and
// whether it is the last.
func aad(header []byte, n uint64, final bool) []byte {
	b := make([]byte, 0, len(header)+9)
	b = append(b, header...)
	b = binary.BigEndian.AppendUint64(b, n)
	if final {
		return append(b, 1)
	}
	return append(b, 0)
}

// sealer cuts what is written into chunks. A full chunk is sealed only
// once more bytes follow it, so that the last chunk, sealed by close
// with the final flag, may be full or empty.
type sealer struct {
	w      io.Writer
	aead   cipher.AEAD
	header []byte
	n      uint64
	buf    []byte
	size   int
}

func (s *sealer) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		if len(s.buf) == s.size {
			if err := s.seal(false); err != nil {
				return written, err
			}
		}
		k := min(s.size-len(s.buf), len(p))
		s.buf = append(s.buf, p[:k]...)
		p, written = p[k:], written+k
	}
	return written, nil
}

func (s *sealer) seal(final bool) error {
	out := s.aead.Seal(nil, nil, s.buf, aad(s.header, s.n, final))
	s.n++
	s.buf = s.buf[:0]
	_, err := s.w.Write(out)
	return err
}

func (s *sealer) close() error { return s.seal(true) }

// opener reads and authenticates the chunks in order.
type opener struct {
	r      *bufio.Reader
	aead   cipher.AEAD
	header []byte
	n      uint64
	size   int
	raw    []byte
	plain  []byte
	done   bool // the final chunk was authenticated
}

func newOpener(r io.Reader, a cipher.AEAD, header []byte, size int) *opener {
	return &opener{r: bufio.NewReaderSize(r, 64<<10), aead: a, header: header, size: size,
		raw: make([]byte, size+a.Overhead())}
}

func (o *opener) Read(p []byte) (int, error) {
	for len(o.plain) == 0 {
		if o.done {
			return 0, io.EOF
		}
		if err := o.next(); err != nil {
			return 0, err
		}
	}
	k := copy(p, o.plain)
	o.plain = o.plain[k:]
	return k, nil
}

func (o *opener) next() error {
	n, err := io.ReadFull(o.r, o.raw)
	final := false
	switch {
	case errors.Is(err, io.EOF):
		return fmt.Errorf("%w (it ends before its last chunk)", ErrCorrupt)
	case errors.Is(err, io.ErrUnexpectedEOF):
		final = true // a short chunk can only be the last
	case err != nil:
		return err
	default:
		if _, perr := o.r.Peek(1); errors.Is(perr, io.EOF) {
			final = true
		} else if perr != nil {
			return perr
		}
	}
	if n < o.aead.Overhead() {
		return fmt.Errorf("%w (it ends inside a chunk)", ErrCorrupt)
	}
	plain, err := o.aead.Open(o.raw[:0:0], nil, o.raw[:n], aad(o.header, o.n, final))
	if err != nil {
		return fmt.Errorf("%w (chunk %d does not authenticate)", ErrCorrupt, o.n)
	}
	if !final && len(plain) != o.size {
		return fmt.Errorf("%w (chunk %d)", ErrCorrupt, o.n)
	}
	o.n++
	o.plain, o.done = plain, final
	return nil
}
