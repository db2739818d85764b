package ticketkeys_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/server/ticketkeys"
)

// clock is a settable time for rotation tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

func epochs(t *testing.T, st ticketkeys.Store) map[int64][32]byte {
	t.Helper()
	ks, err := st.Keys(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int64][32]byte{}
	for _, k := range ks {
		out[k.Epoch] = k.Secret
	}
	return out
}

func TestFileIsPrivateAndRotatesDaily(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ticket-keys.json")
	st := ticketkeys.NewFile(path)
	c := &clock{t: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	r := ticketkeys.New(st, ticketkeys.WithClock(c.now))
	if err := r.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	day := c.now().UnixNano() / int64(ticketkeys.DefaultPeriod)
	first := epochs(t, st)
	if len(first) != 2 || first[day] == ([32]byte{}) || first[day+1] == ([32]byte{}) || first[day] == first[day+1] {
		t.Fatalf("after the first refresh: want distinct keys for today and tomorrow, got epochs %v", keysOf(first))
	}
	// A refresh the same day changes nothing.
	if err := r.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if again := epochs(t, st); len(again) != 2 || again[day] != first[day] {
		t.Fatal("a second refresh on the same day replaced a key")
	}
	// A day on: tomorrow's key (made a day ahead) is today's, a new one
	// is made for the day after, yesterday's is kept.
	c.add(24 * time.Hour)
	if err := r.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	next := epochs(t, st)
	if len(next) != 3 || next[day] != first[day] || next[day+1] != first[day+1] || next[day+2] == ([32]byte{}) {
		t.Fatalf("after a day: epochs %v", keysOf(next))
	}
	// Past the lifetime (7 days after it stopped encrypting) a key goes.
	c.add(8 * 24 * time.Hour)
	if err := r.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	late := epochs(t, st)
	if _, ok := late[day]; ok {
		t.Fatalf("a key 9 days old is still kept: epochs %v", keysOf(late))
	}
	if _, ok := late[day+2]; !ok {
		t.Fatalf("a key that stopped encrypting 7 days ago was deleted: epochs %v", keysOf(late))
	}
	// The file is refused once others can read it.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := r.Refresh(t.Context()); err == nil || !strings.Contains(err.Error(), "accessible by others") {
		t.Fatalf("a world-readable key file: %v", err)
	}
}

func keysOf(m map[int64][32]byte) []int64 {
	var out []int64
	for e := range m {
		out = append(out, e)
	}
	return out
}

func TestKeysAreNotLogged(t *testing.T) {
	k := ticketkeys.Key{Epoch: 7}
	copy(k.Secret[:], "0123456789abcdef0123456789abcdef")
	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("x", "key", k)
	out := b.String() + fmt.Sprint(k) + fmt.Sprintf("%v %+v %s", k, k, k)
	if strings.Contains(out, "0123456789abcdef") || strings.Contains(out, "3031323334") {
		t.Fatalf("the secret shows in output: %s", out)
	}
}

// TestResumesAcrossRestart: a ticket issued by one process resumes on a
// new process over the same key file, and on a process a day later,
// after rotation, while a process with fresh keys makes a full handshake.
func TestResumesAcrossRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ticket-keys.json")
	c := &clock{t: time.Now()}
	cert := selfSigned(t)
	cache := tls.NewLRUClientSessionCache(4)
	serve := func(st ticketkeys.Store) bool {
		r := ticketkeys.New(st, ticketkeys.WithClock(c.now))
		if err := r.Refresh(t.Context()); err != nil {
			t.Fatal(err)
		}
		cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}
		r.Attach(cfg)
		return handshake(t, cfg, cert, cache)
	}
	if serve(ticketkeys.NewFile(path)) {
		t.Fatal("the first connection resumed")
	}
	if !serve(ticketkeys.NewFile(path)) {
		t.Fatal("a restarted process over the same key file did not resume")
	}
	c.add(25 * time.Hour)
	if !serve(ticketkeys.NewFile(path)) {
		t.Fatal("a ticket from yesterday's key did not resume after rotation")
	}
	if serve(ticketkeys.NewFile(filepath.Join(t.TempDir(), "other.json"))) {
		t.Fatal("resumed on a process with other keys")
	}
}

// handshake runs one TLS 1.3 connection over loopback, reads the ticket
// the server sends, and reports whether the session was resumed.
func handshake(t *testing.T, srv *tls.Config, cert tls.Certificate, cache tls.ClientSessionCache) bool {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		tc := tls.Server(c, srv)
		if tc.HandshakeContext(context.Background()) == nil {
			tc.Write([]byte("x"))
		}
		tc.Close()
	}()
	roots := x509.NewCertPool()
	roots.AddCert(cert.Leaf)
	conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: roots, ServerName: "localhost", ClientSessionCache: cache})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	buf := make([]byte, 1)
	if _, err := conn.Read(buf); err != nil { // takes in the ticket
		t.Fatal(err)
	}
	return conn.ConnectionState().DidResume
}

func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), DNSNames: []string{"localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(30 * 24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}
