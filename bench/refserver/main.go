// Command refserver is the reference `make bench` measures Cordon's
// gateway against: a bare gorilla/websocket + crypto/tls server with the
// same mutual TLS (the same server certificate chain, the same client
// CAs, the same FIPS-or-not TLS settings) and nothing else. It answers
// each frame with the acknowledgement the agent waits for, so the real
// agent (cordon-sim) runs against it unchanged, pings like the gateway,
// and stores nothing.
//
// It is set up as FIELD-NOTES' measured bare stack: ReadBufferSize 512,
// a shared write-buffer pool, the read loop started after the handler
// returns. GET /count on --status (plain HTTP, loopback) answers the
// number of live connections.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"

	"github.com/cordon-mdm/cordon/internal/fdlimit"
	"github.com/cordon-mdm/cordon/internal/fips"
	"github.com/cordon-mdm/cordon/protocol"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "refserver:", err)
		os.Exit(1)
	}
}

func run() error {
	listen := flag.String("listen", "127.0.0.1:8444", "agent listen address (mutual TLS)")
	status := flag.String("status", "127.0.0.1:0", "plain-HTTP address of GET /count")
	certFile := flag.String("cert", "", "server certificate chain (PEM)")
	keyFile := flag.String("key", "", "server key (PEM)")
	caFile := flag.String("client-ca", "", "CA certificates agents' certificates chain to (PEM)")
	ping := flag.Duration("ping", 30*time.Second, "ping interval, as the gateway's")
	flag.Parse()
	fdlimit.Raise()
	cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		return err
	}
	caPEM, err := os.ReadFile(*caFile)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return errors.New("no CA certificate in --client-ca")
	}
	cfg := fips.TLS(fips.Default())
	cfg.Certificates, cfg.ClientCAs, cfg.ClientAuth = []tls.Certificate{cert}, pool, tls.RequireAndVerifyClientCert

	h := &hub{conns: map[*conn]struct{}{}}
	go h.pinger(*ping)
	up := websocket.Upgrader{ReadBufferSize: 512, WriteBufferPool: &sync.Pool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		c := &conn{ws: ws}
		h.add(c)
		go h.serve(c)
	})
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	sln, err := net.Listen("tcp", *status)
	if err != nil {
		return err
	}
	fmt.Printf("STATUS http://%s/count\n", sln.Addr())
	go http.Serve(sln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, h.live.Load()) }))
	srv := &http.Server{Handler: mux, TLSConfig: cfg, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() { <-ctx.Done(); srv.Close() }()
	if err := srv.ServeTLS(ln, "", ""); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

type conn struct {
	ws  *websocket.Conn
	wmu sync.Mutex
}

func (c *conn) write(typ int, data []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if typ == websocket.PingMessage {
		return c.ws.WriteControl(typ, data, time.Now().Add(10*time.Second))
	}
	c.ws.SetWriteDeadline(time.Now().Add(15 * time.Second))
	return c.ws.WriteMessage(typ, data)
}

// hub is the live connections, pinged by one goroutine as the gateway's
// hub does (a ticker per connection would cost a goroutine stack each).
type hub struct {
	mu    sync.Mutex
	conns map[*conn]struct{}
	live  atomic.Int64
}

func (h *hub) add(c *conn) {
	h.mu.Lock()
	h.conns[c] = struct{}{}
	h.mu.Unlock()
	h.live.Add(1)
}

func (h *hub) remove(c *conn) {
	h.mu.Lock()
	delete(h.conns, c)
	h.mu.Unlock()
	h.live.Add(-1)
}

func (h *hub) pinger(every time.Duration) {
	for range time.Tick(every) {
		h.mu.Lock()
		all := make([]*conn, 0, len(h.conns))
		for c := range h.conns {
			all = append(all, c)
		}
		h.mu.Unlock()
		for _, c := range all {
			c.write(websocket.PingMessage, nil)
		}
	}
}

// serve acknowledges every frame by id, as the gateway does once a frame
// is stored.
func (h *hub) serve(c *conn) {
	defer h.remove(c)
	defer c.ws.Close()
	c.ws.SetReadLimit(protocol.MaxFrameBytes)
	for {
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		env, err := protocol.Decode(data)
		if err != nil {
			continue
		}
		ack, err := protocol.Encode(protocol.TypeAck, env.ID, time.Now(), protocol.Ack{Ref: env.ID})
		if err != nil {
			continue
		}
		if c.write(websocket.TextMessage, ack) != nil {
			return
		}
	}
}
