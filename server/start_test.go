package server

import (
	"context"
	"errors"
	"net"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestStartFailureClosesWhatItOpened: with the agent port taken, Start
// fails naming the address, and the console listener it had bound is
// closed again: the port can be bound anew and nothing answers on it.
func TestStartFailureClosesWhatItOpened(t *testing.T) {
	ctx := context.Background()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	consoleAddr := freeAddr(t)
	s, err := New(ctx, WithDataDir(t.TempDir()), WithListen(consoleAddr), WithAgentListen(taken.Addr().String()), WithFIPS(false))
	if err != nil {
		t.Fatal(err)
	}
	err = s.Start(ctx)
	if err == nil {
		s.Shutdown(ctx)
		t.Fatal("Start succeeded on a taken agent port")
	}
	if !strings.Contains(err.Error(), taken.Addr().String()) {
		t.Errorf("Start error %q does not name the taken address %s", err, taken.Addr())
	}
	closedAgain(t, consoleAddr)
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.Shutdown(sctx); err != nil {
		t.Fatalf("Shutdown after a failed start: %v", err)
	}
}

// TestStartFailureAfterTheGatewayClosesIt: the start-up audit entry is
// refused (AU-5: the server does not run unaudited) after the services
// and the gateway were built; Start fails, and neither listener nor any
// goroutine of the gateway or the sweeps is left.
func TestStartFailureAfterTheGatewayClosesIt(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	// A first start makes the compliance profiles, so that the second
	// one gets as far as its start-up entry.
	s, err := New(ctx, WithDataDir(dir), WithListen("127.0.0.1:0"), WithAgentListen("127.0.0.1:0"), WithFIPS(false))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	consoleAddr, agentAddr := freeAddr(t), freeAddr(t)
	s, err = New(ctx, WithDataDir(dir), WithListen(consoleAddr), WithAgentListen(agentAddr), WithFIPS(false))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Store.DB().Exec("CREATE TRIGGER ro BEFORE INSERT ON audit_entries BEGIN SELECT RAISE(ABORT, 'read-only'); END").Error; err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err == nil {
		s.Shutdown(ctx)
		t.Fatal("Start succeeded without its audit entry")
	}
	if s.gw == nil {
		t.Fatal("the failure came before the gateway was built; the test no longer covers closing it")
	}
	closedAgain(t, consoleAddr)
	closedAgain(t, agentAddr)
	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	for _, fn := range []string{"gateway.(*Gateway).keepalive", "server.(*Server).every", "net/http.(*Server).Serve"} {
		if strings.Contains(stacks, fn) {
			t.Errorf("a goroutine in %s is left after the failed start", fn)
		}
	}
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown after a failed start: %v", err)
	}
}

// closedAgain: nothing answers on addr, and it can be bound again.
func closedAgain(t *testing.T, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err == nil {
		c.Close()
		t.Fatalf("something still accepts connections on %s", addr)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial %s: %v, want connection refused", addr, err)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("%s is still bound after the failed start: %v", addr, err)
	}
	l.Close()
}

// freeAddr is a loopback address with a port nobody listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
