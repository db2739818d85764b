// Package swtpmtest starts a real swtpm (Debian package swtpm) for a test:
// socket mode on loopback, its own state directory, stopped at cleanup.
// Every Start is a different TPM, with its own seeds.
package swtpmtest

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2/transport"

	"github.com/cordon-mdm/cordon/internal/needs"
	"github.com/cordon-mdm/cordon/internal/swtpm"
)

// TPM is a running swtpm.
type TPM struct {
	// Addr is the data channel, host:port.
	Addr string
	// StateDir holds the emulator's NV state (seeds, persistent objects).
	StateDir string
}

// Open connects to the emulator; the caller closes the connection.
func (s *TPM) Open() (transport.TPMCloser, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return swtpm.Dial(ctx, s.Addr)
}

// Start runs a fresh swtpm for t, or ends t through needs.Missing when
// swtpm is not installed.
func Start(t testing.TB) *TPM {
	t.Helper()
	bin := needs.Tool(t, "swtpm", "swtpm")
	var last error
	// Free ports are found by binding and releasing them; another process
	// may take one in between, so a failed start is retried on new ports.
	for range 5 {
		s, err := start(t, bin)
		if err == nil {
			return s
		}
		last = err
	}
	t.Fatalf("swtpm did not start: %v", last)
	return nil
}

func start(t testing.TB, bin string) (*TPM, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	s := &TPM{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0])), StateDir: t.TempDir()}
	cmd := exec.Command(bin, "socket", "--tpm2", "--tpmstate", "dir="+s.StateDir,
		"--server", "type=tcp,bindaddr=127.0.0.1,port="+strconv.Itoa(ports[0]),
		"--ctrl", "type=tcp,bindaddr=127.0.0.1,port="+strconv.Itoa(ports[1]),
		// not-need-init: no CMD_INIT on the control channel is needed
		// before the first command; startup-clear sends TPM2_Startup.
		"--flags", "not-need-init,startup-clear")
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		cmd.Process.Kill()
		<-exited
	}
	// Bounded polling until the data channel answers a command.
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case err := <-exited:
			exited <- err
			return nil, fmt.Errorf("swtpm exited: %v: %s", err, out.String())
		default:
		}
		if err := s.ping(); err == nil {
			break
		} else if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("swtpm not answering: %v: %s", err, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Cleanup(stop)
	return s, nil
}

// ping sends TPM2_GetRandom(8).
func (s *TPM) ping() error {
	c, err := s.Open()
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Send([]byte{0x80, 0x01, 0, 0, 0, 0x0c, 0, 0, 0x01, 0x7b, 0, 8})
	return err
}

func freePorts(n int) ([]int, error) {
	var ports []int
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
