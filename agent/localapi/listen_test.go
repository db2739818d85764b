package localapi

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestListenAlreadyListening(t *testing.T) {
	sock := serve(t, newFakeAgent())
	ln, err := Listen(sock)
	if err == nil {
		ln.Close()
		t.Fatal("Listen took the socket of a running agent")
	}
	if !strings.Contains(err.Error(), "already listening") {
		t.Errorf("err = %v", err)
	}
	// The running agent still answers.
	if _, err := (Client{Socket: sock}).Status(context.Background()); err != nil {
		t.Errorf("running agent lost its socket: %v", err)
	}
}

func TestListenReplacesStaleSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s")
	old, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	old.(*net.UnixListener).SetUnlinkOnClose(false)
	old.Close()
	if fi, err := os.Lstat(path); err != nil || fi.Mode().Type() != os.ModeSocket {
		t.Fatalf("no stale socket left: %v %v", fi, err)
	}

	ln, err := Listen(path)
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o666 {
		t.Errorf("socket mode = %v, want a socket with 0666", fi.Mode())
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, newFakeAgent(), slog.New(slog.DiscardHandler)) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	if st, err := (Client{Socket: path}).Status(context.Background()); err != nil || st.DeviceID != "self" {
		t.Errorf("Status over the new socket: %+v, %v", st, err)
	}
}

func TestListenFresh(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s")
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o666 {
		t.Errorf("socket mode = %v, want a socket with 0666", fi.Mode())
	}
}

func TestClientNotRunning(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nothing-here")
	_, err := Client{Socket: path}.Status(context.Background())
	if !errors.Is(err, ErrNotRunning) {
		t.Errorf("Status: err = %v, want ErrNotRunning", err)
	}
	_, err = Client{Socket: path}.Report(context.Background(), validReport(), time.Second)
	if !errors.Is(err, ErrNotRunning) {
		t.Errorf("Report: err = %v, want ErrNotRunning", err)
	}

	// A stale socket with nobody behind it is not running either.
	stale := filepath.Join(t.TempDir(), "s")
	old, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	old.(*net.UnixListener).SetUnlinkOnClose(false)
	old.Close()
	if _, err := (Client{Socket: stale}).Status(context.Background()); !errors.Is(err, ErrNotRunning) {
		t.Errorf("stale socket: err = %v, want ErrNotRunning", err)
	}
}

func TestListenLeavesNonSocketsAlone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.sock")
	os.WriteFile(path, []byte("not a socket"), 0o600)
	if _, err := Listen(path); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("Listen over a regular file: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "not a socket" {
		t.Fatal("the file was replaced")
	}
}
