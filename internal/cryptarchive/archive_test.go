package cryptarchive

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testPass = "correct horse battery staple"

type member struct {
	name string
	data []byte
}

// build writes members into an archive with cheap key derivation.
func build(t testing.TB, chunk int, ms ...member) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, testPass, WithIterations(1000), WithChunkSize(chunk), WithInfo([]byte(`{"k":"v"}`)))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if err := w.Add(m.name, 0o600, int64(len(m.data)), bytes.NewReader(m.data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// readAll reads every member; it fails unless the archive verifies.
func readAll(b []byte, pass string, opts ...Option) (map[string][]byte, error) {
	r, err := NewReader(bytes.NewReader(b), pass, opts...)
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for {
		e, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		data, err := io.ReadAll(r)
		if err != nil {
			return nil, err
		}
		out[e.Name] = data
	}
}

func sample() []member {
	big := bytes.Repeat([]byte("0123456789abcdef"), 1000)
	return []member{{"cordon.db", big}, {"ca/root.key", []byte("-----BEGIN PRIVATE KEY-----\n")}, {"empty", nil},
		{"apple-mdm/x/y", []byte("z")}}
}

func TestRoundTrip(t *testing.T) {
	for _, chunk := range []int{16, 100, 4096, DefaultChunkSize} {
		ms := sample()
		b := build(t, chunk, ms...)
		got, err := readAll(b, testPass)
		if err != nil {
			t.Fatalf("chunk %d: %v", chunk, err)
		}
		if len(got) != len(ms) {
			t.Fatalf("chunk %d: %d members, want %d", chunk, len(got), len(ms))
		}
		for _, m := range ms {
			if !bytes.Equal(got[m.name], m.data) {
				t.Fatalf("chunk %d: %s differs", chunk, m.name)
			}
		}
	}
}

func TestManifestAndInfo(t *testing.T) {
	ms := sample()
	r, err := NewReader(bytes.NewReader(build(t, 64, ms...)), testPass)
	if err != nil {
		t.Fatal(err)
	}
	if string(r.Info()) != `{"k":"v"}` {
		t.Fatalf("info %q", r.Info())
	}
	if r.Manifest() != nil {
		t.Fatal("a manifest before the archive was read through")
	}
	// Skip every content: Next reads and hashes it anyway.
	for {
		if _, err := r.Next(); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	man := r.Manifest()
	for i, m := range ms {
		if man[i].Name != m.name || man[i].SHA256 != sha256.Sum256(m.data) || man[i].Size != int64(len(m.data)) {
			t.Fatalf("manifest entry %d: %+v", i, man[i])
		}
	}
}

// Every byte of a small archive matters: flipping any one of them is
// refused, whether in the header, a nonce, a ciphertext or a tag.
func TestEverySingleByteFlipRefused(t *testing.T) {
	b := build(t, 32, member{"a", []byte("hello world, this is a key")}, member{"ca/b", bytes.Repeat([]byte{7}, 90)})
	for i := range b {
		for _, x := range []byte{0x01, 0x80} {
			c := bytes.Clone(b)
			c[i] ^= x
			if _, err := readAll(c, testPass); err == nil {
				t.Fatalf("byte %d ^ %#x accepted (of %d)", i, x, len(b))
			}
		}
	}
}

// chunkEnds lists the offsets where each chunk of b ends.
func chunkEnds(b []byte, chunk int) []int {
	var ends []int
	full := chunk + 28
	for off := headerSize; off < len(b); off += full {
		ends = append(ends, min(off+full, len(b)))
	}
	return ends
}

func TestTruncationRefused(t *testing.T) {
	const chunk = 32
	b := build(t, chunk, sample()...)
	ends := chunkEnds(b, chunk)
	if ends[len(ends)-1] != len(b) || len(ends) < 10 {
		t.Fatalf("chunk layout: %d chunks ending at %d of %d", len(ends), ends[len(ends)-1], len(b))
	}
	// At every chunk boundary (before the last chunk's end), and at the
	// header's end and inside it.
	cuts := append([]int{0, 5, headerSize - 1, headerSize}, ends[:len(ends)-1]...)
	for _, n := range cuts {
		if _, err := readAll(b[:n], testPass); err == nil {
			t.Fatalf("archive cut at %d of %d accepted", n, len(b))
		} else if n >= len(magic) && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("cut at %d: %v, want ErrCorrupt", n, err)
		}
	}
	// Inside chunks too, and with bytes appended.
	for _, n := range []int{headerSize + 1, len(b) - 1, len(b) - 17} {
		if _, err := readAll(b[:n], testPass); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("cut at %d: %v", n, err)
		}
	}
	if _, err := readAll(append(bytes.Clone(b), 0), testPass); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a byte appended: %v", err)
	}
}

func TestReorderedChunksRefused(t *testing.T) {
	const chunk = 32
	b := build(t, chunk, sample()...)
	full := chunk + 28
	c := bytes.Clone(b)
	a1, a2 := headerSize+full, headerSize+2*full
	copy(c[a1:a1+full], b[a2:a2+full])
	copy(c[a2:a2+full], b[a1:a1+full])
	if _, err := readAll(c, testPass); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("swapped chunks: %v", err)
	}
	// Dropping a whole chunk from the middle.
	d := append(bytes.Clone(b[:a1]), b[a2:]...)
	if _, err := readAll(d, testPass); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("dropped chunk: %v", err)
	}
}

func TestWrongPassphrase(t *testing.T) {
	b := build(t, 64, sample()...)
	_, err := readAll(b, "another passphrase entirely")
	if !errors.Is(err, ErrPassphrase) {
		t.Fatalf("got %v, want ErrPassphrase", err)
	}
	if !strings.Contains(err.Error(), "wrong passphrase") {
		t.Fatalf("message %q does not say so", err)
	}
	if _, err := readAll([]byte("PK\x03\x04 a zip file, not a backup........................................................................"), testPass); !errors.Is(err, ErrNotArchive) {
		t.Fatalf("not an archive: %v", err)
	}
}

func TestIterationLimit(t *testing.T) {
	b := build(t, 64, sample()...)
	if _, err := readAll(b, testPass, WithMaxIterations(999)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("1000 iterations over a limit of 999: %v", err)
	}
}

func TestWriterRefusesBadNamesAndChangingFiles(t *testing.T) {
	w, err := NewWriter(io.Discard, testPass, WithIterations(1000))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"", "/abs", "../up", "a/../b", "a//b", "./a", "a/", `a\b`, "a\x00b", "."} {
		if err := w.Add(n, 0o600, 0, bytes.NewReader(nil)); err == nil {
			t.Fatalf("name %q accepted", n)
		}
	}
	if err := w.Add("short", 0o600, 10, bytes.NewReader([]byte("abc"))); err == nil || !strings.Contains(err.Error(), "shrank") {
		t.Fatalf("short file: %v", err)
	}
	w2, _ := NewWriter(io.Discard, testPass, WithIterations(1000))
	if err := w2.Add("long", 0o600, 2, bytes.NewReader([]byte("abc"))); err == nil || !strings.Contains(err.Error(), "grew") {
		t.Fatalf("long file: %v", err)
	}
}

func TestPassphraseFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
		return p
	}
	if p, err := ReadPassphraseFile(write("ok", "sixteen chars ok\n", 0o600)); err != nil || p != "sixteen chars ok" {
		t.Fatalf("good file: %q %v", p, err)
	}
	if _, err := ReadPassphraseFile(write("ro", "sixteen chars ok", 0o400)); err != nil {
		t.Fatalf("0400 file: %v", err)
	}
	for name, c := range map[string]struct {
		content string
		mode    os.FileMode
		want    string
	}{
		"open":  {"sixteen chars ok", 0o644, "accessible by others"},
		"empty": {"", 0o600, "empty"},
		"nl":    {"\n", 0o600, "empty"},
		"short": {"fifteen chars!!", 0o600, "shorter than 16"},
	} {
		_, err := ReadPassphraseFile(write(name, c.content, c.mode))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("%s: %v, want %q", name, err, c.want)
		}
	}
	if _, err := ReadPassphraseFile(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("missing file accepted")
	}
}

// FuzzReader feeds the decoder arbitrary files, seeded with real
// archives (whole, cut and flipped): it must never panic, and anything
// it accepts must have been made with the passphrase.
func FuzzReader(f *testing.F) {
	good := build(f, 32, member{"a", []byte("key material")}, member{"b/c", bytes.Repeat([]byte{1}, 70)})
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add(good[:headerSize])
	f.Add([]byte(magic))
	f.Add([]byte{})
	for _, i := range []int{0, 9, 12, headerSize + 3, len(good) - 1} {
		c := bytes.Clone(good)
		c[i] ^= 0x40
		f.Add(c)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := readAll(b, testPass, WithMaxIterations(4000))
		if err != nil {
			return
		}
		if bytes.Equal(b, good) && len(got) != 2 {
			t.Fatalf("the good archive read as %d members", len(got))
		}
		for name := range got {
			if !ValidName(name) {
				t.Fatalf("accepted member name %q", name)
			}
		}
		_ = fmt.Sprint(got)
	})
}
