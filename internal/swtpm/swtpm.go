// Package swtpm reaches swtpm, the TPM 2.0 emulator, over its TCP data
// channel in socket mode. That channel carries raw TPM commands (not the
// Microsoft simulator's framing that go-tpm's tcp transport speaks), so
// this small transport is what lets pure Go drive a real TPM 2.0
// implementation in tests and on a developer's machine.
package swtpm

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/google/go-tpm/tpm2/transport"
)

// maxResponse bounds a response; TPM 2.0 responses are a few KiB.
const maxResponse = 1 << 16

// Dial connects to swtpm's data channel at addr (host:port). swtpm serves
// one connection at a time, so callers close it when done.
func Dial(ctx context.Context, addr string) (transport.TPMCloser, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("swtpm at %s: %w", addr, err)
	}
	return &conn{c: c}, nil
}

type conn struct {
	mu sync.Mutex
	c  net.Conn
}

// Send writes one command and reads its response: the 10-byte header
// (tag, size, code) says how much follows.
func (t *conn) Send(cmd []byte) ([]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	// A TPM command takes milliseconds; a minute means swtpm is gone.
	t.c.SetDeadline(time.Now().Add(time.Minute))
	if _, err := t.c.Write(cmd); err != nil {
		return nil, fmt.Errorf("swtpm: send: %w", err)
	}
	hdr := make([]byte, 10)
	if _, err := io.ReadFull(t.c, hdr); err != nil {
		return nil, fmt.Errorf("swtpm: response header: %w", err)
	}
	size := binary.BigEndian.Uint32(hdr[2:6])
	if size < 10 || size > maxResponse {
		return nil, fmt.Errorf("swtpm: response size %d", size)
	}
	rsp := make([]byte, size)
	copy(rsp, hdr)
	if _, err := io.ReadFull(t.c, rsp[10:]); err != nil {
		return nil, fmt.Errorf("swtpm: response body: %w", err)
	}
	return rsp, nil
}

func (t *conn) Close() error {
	if t.c == nil {
		return errors.New("swtpm: closed")
	}
	return t.c.Close()
}
