// Package pprofserve serves Go's runtime profiles (net/http/pprof) for an
// operator or a benchmark measuring where a server's time goes.
//
// The profiles show stacks and memory of a process that holds keys and
// device data, and the handlers have no authentication, so they are only
// ever served on a loopback address: anyone who can reach them already
// has a shell on the host.
package pprofserve

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// ErrNotLoopback is returned for an address that is not on a loopback
// interface.
var ErrNotLoopback = errors.New("profiles are served only on a loopback address (127.0.0.1 or ::1)")

// Check refuses an address that is not host:port on loopback. A host name
// is refused too: what it resolves to can change.
func Check(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("profile address %q: %w", addr, err)
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("profile address %q: %w", addr, ErrNotLoopback)
	}
	return nil
}

// Listen checks addr and binds it, so a bad address or a port in use
// stops the server's start instead of failing later.
func Listen(addr string) (net.Listener, error) {
	if err := Check(addr); err != nil {
		return nil, err
	}
	return net.Listen("tcp", addr)
}

// Serve answers /debug/pprof/ on l until ctx ends.
func Serve(ctx context.Context, l net.Listener) error {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	// A CPU profile or trace runs for the seconds asked, so there is no
	// write timeout; the header timeout bounds an idle client.
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		hs.Close()
	}()
	if err := hs.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
