//go:build unix

package bench

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"

	"github.com/cordon-mdm/cordon/internal/fips"
	"github.com/cordon-mdm/cordon/internal/wshandshake"
	"github.com/cordon-mdm/cordon/pki/identity"
	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/server"
	"github.com/cordon-mdm/cordon/server/commands"
	"github.com/cordon-mdm/cordon/server/store"
)

// The client process is this test binary run again with these variables
// set; TestBenchClientProcess is its entry point.
const (
	clientEnv     = "CORDON_BENCH_CLIENT" // "1" in the client process
	clientDirEnv  = "CORDON_BENCH_DIR"    // where the parent wrote the client material
	clientDialers = 32                    // connections being set up at once
	resultPrefix  = "CONNECTED "          // "CONNECTED <n> <elapsed ns>" on the child's stdout
)

// Files in the client material dir.
const (
	rootFile = "root.pem"
	urlFile  = "gateway.url"
	nFile    = "agents"
)

func agentCertFile(dir string, i int) string {
	return filepath.Join(dir, fmt.Sprintf("agent-%05d.crt", i))
}
func agentKeyFile(dir string, i int) string {
	return filepath.Join(dir, fmt.Sprintf("agent-%05d.key", i))
}

// BenchmarkIdleAgents connects N agents over mutual-TLS websockets on
// loopback and reports what each idle connection costs the server's Go
// runtime (heap and stacks in use) and how fast the agents got connected.
//
// The agents live in a separate process (this test binary re-executed,
// see TestBenchClientProcess), so the memory measured is the server's
// alone. Each connection makes the gateway write to SQLite (online flag,
// hello, audit entry), so the connect rate is bounded by the database.
//
// One iteration is one full measurement whatever b.N is; run it with
// -benchtime 1x. The built-in ns/op is suppressed: it would only be the
// wall time of the connect phase, which conn/s states better.
func BenchmarkIdleAgents(b *testing.B) {
	for _, n := range []int{1000, 5000} {
		b.Run(fmt.Sprintf("agents=%d", n), func(b *testing.B) { benchIdleAgents(b, n) })
	}
}

func benchIdleAgents(b *testing.B, n int) {
	raiseNoFile(b, uint64(n)+512)
	ctx := context.Background()
	srv, err := server.New(ctx, server.WithDataDir(b.TempDir()), server.WithListen("127.0.0.1:0"),
		server.WithAgentListen("127.0.0.1:0"), server.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.Start(ctx); err != nil {
		srv.Shutdown(ctx) // closes the store and CA
		b.Fatal(err)
	}
	stopServer := sync.OnceFunc(func() {
		start := time.Now()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			b.Errorf("server shutdown: %v", err)
		}
		b.Logf("server shut down in %v", time.Since(start).Round(time.Millisecond))
	})
	defer stopServer()

	// Setup, not measured: keys, certificates, device rows, client files.
	dir := b.TempDir()
	start := time.Now()
	if err := provision(ctx, srv, dir, n); err != nil {
		b.Fatal(err)
	}
	b.Logf("setup: %d device keys, certificates and rows in %v", n, time.Since(start).Round(time.Millisecond))

	before := sampleMemory()
	b.ResetTimer()

	child, err := startClients(dir)
	if err != nil {
		b.Fatal(err)
	}
	// Stop the server first, as a restart would: the gateway closes every
	// connection itself. Either order makes it record each disconnection
	// in the database, so with thousands of agents this takes a while
	// (the "server shut down in" line).
	defer func() {
		stopServer()
		if err := child.stop(30 * time.Second); err != nil {
			b.Errorf("client process: %v", err)
		}
	}()

	var connected int
	var elapsedNS int64
	select {
	case line := <-child.result:
		if _, err := fmt.Sscanf(strings.TrimPrefix(line, resultPrefix), "%d %d", &connected, &elapsedNS); err != nil {
			b.Fatalf("client process said %q: %v", line, err)
		}
	case <-child.exited:
		b.Fatal("client process exited before connecting its agents (its output is above)")
	case <-time.After(5 * time.Minute):
		b.Fatal("client process did not connect its agents within 5 minutes")
	}
	elapsed := time.Duration(elapsedNS)
	if connected != n {
		b.Fatalf("client process connected %d agents, want %d", connected, n)
	}
	if err := waitCount(srv, n, 30*time.Second); err != nil {
		b.Fatal(err)
	}
	time.Sleep(time.Second) // let the idle state settle
	after := sampleMemory()
	b.StopTimer()
	if err := writeIdleHeapProfile(n); err != nil {
		b.Error(err)
	}
	if got := srv.Hub().Count(); got != n {
		b.Fatalf("%d of %d agents still connected after the measurement", got, n)
	}

	p50, p99, err := commandLatency(srv, 500)
	if err != nil {
		b.Fatal(err)
	}

	per := func(a, b uint64) float64 { return (float64(a) - float64(b)) / float64(n) }
	heapStack := per(after.heap+after.stack, before.heap+before.stack)
	rate := float64(n) / elapsed.Seconds()
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(heapStack, "server-B/conn")
	b.ReportMetric(per(after.heap, before.heap), "heap-B/conn")
	b.ReportMetric(per(after.stack, before.stack), "stack-B/conn")
	b.ReportMetric(per(after.sys, before.sys), "sys-B/conn")
	b.ReportMetric(rate, "conn/s")
	b.ReportMetric(float64(p50.Microseconds())/1000, "cmd-p50-ms")
	b.ReportMetric(float64(p99.Microseconds())/1000, "cmd-p99-ms")
	b.ReportMetric(float64(n), "agents")
	b.Logf("N=%d idle agents: %.1f KiB/conn server memory (heap %.1f + stack %.1f KiB; Go runtime total %.1f KiB, process RSS %.1f KiB), "+
		"%.0f conn/s (%d agents in %v), %.2f goroutines/conn",
		n, heapStack/1024, per(after.heap, before.heap)/1024, per(after.stack, before.stack)/1024,
		per(after.sys, before.sys)/1024, per(after.rss, before.rss)/1024,
		rate, n, elapsed.Round(time.Millisecond), float64(after.goroutines-before.goroutines)/float64(n))
}

// provision creates n devices with a certificate each, records them in
// the store and writes what the client process needs to dir.
func provision(ctx context.Context, srv *server.Server, dir string, n int) error {
	if err := os.WriteFile(filepath.Join(dir, rootFile), []byte(identity.EncodeChain(srv.CA.Root())), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, urlFile), []byte(srv.GatewayURL()), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, nFile), []byte(strconv.Itoa(n)), 0o600); err != nil {
		return err
	}
	devices := make([]store.Device, n)
	certs := make([]*store.Certificate, n)
	errs := make([]error, n)
	next := atomic.Int64{}
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) * 2 {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				id := uuid.NewString()
				leaf, err := issue(ctx, srv, dir, i, id)
				if err != nil {
					errs[i] = fmt.Errorf("agent %d: %w", i, err)
					next.Store(int64(n)) // stop the others
					return
				}
				devices[i] = store.Device{ID: id, Name: fmt.Sprintf("bench-%05d", i), Status: store.StatusActive,
					EnrolledAt: time.Now().UTC(), CertSerial: identity.Serial(leaf.SerialNumber)}
				certs[i] = store.CertificateFor(id, leaf)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	db := srv.Store.DB().WithContext(ctx)
	if err := db.CreateInBatches(devices, 500).Error; err != nil {
		return fmt.Errorf("insert devices: %w", err)
	}
	if err := db.CreateInBatches(certs, 500).Error; err != nil {
		return fmt.Errorf("insert certificates: %w", err)
	}
	return nil
}

// issue makes agent i's key, has the CA sign it for device id and writes
// the chain and key for the client process.
func issue(ctx context.Context, srv *server.Server, dir string, i int, id string) (*x509.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "bench"}}, key)
	if err != nil {
		return nil, err
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, err
	}
	chain, err := srv.CA.SignDevice(ctx, csr, id)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(agentCertFile(dir, i), []byte(identity.EncodeChain(chain...)), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(agentKeyFile(dir, i), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return nil, err
	}
	return chain[0], nil
}

type memSample struct {
	heap, stack, sys, rss uint64
	goroutines            int
}

// sampleMemory collects garbage, returns freed memory to the OS and
// reads the runtime's figures: heap and stack spans in use, everything
// the runtime holds from the OS (Sys - HeapReleased) and the process RSS
// (which also holds SQLite's C-side memory, outside the Go heap).
func sampleMemory() memSample {
	runtime.GC()
	runtime.GC()
	debug.FreeOSMemory()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return memSample{heap: m.HeapInuse, stack: m.StackInuse, sys: m.Sys - m.HeapReleased, rss: processRSS(),
		goroutines: runtime.NumGoroutine()}
}

// writeIdleHeapProfile writes a heap profile of the server holding n idle
// agents when the benchmark runs with -memprofile. The profile the test
// framework writes at exit is taken after the server shut down, so it
// shows no connection; this one, next to it with an ".agents=<n>"
// suffix, does. Add -memprofilerate 1 for exact per-connection figures:
//
//	go test -run '^$' -bench . -benchtime 1x -memprofile mem.out -memprofilerate 1 ./bench/
//	go tool pprof -sample_index inuse_space -top bench/mem.out.agents=1000
func writeIdleHeapProfile(n int) error {
	f := flag.Lookup("test.memprofile")
	if f == nil || f.Value.String() == "" {
		return nil
	}
	path := f.Value.String() + fmt.Sprintf(".agents=%d", n)
	if out := flag.Lookup("test.outputdir"); out != nil && out.Value.String() != "" && !filepath.IsAbs(path) {
		path = filepath.Join(out.Value.String(), path)
	}
	file, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("heap").WriteTo(file, 0); err != nil {
		file.Close()
		return err
	}
	return file.Close()
}

// processRSS is VmRSS from /proc/self/status, 0 where there is none.
func processRSS() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

func waitCount(srv *server.Server, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		got := srv.Hub().Count()
		if got == n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("gateway has %d live connections after %v, want %d", got, timeout, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// raiseNoFile lifts RLIMIT_NOFILE to at least want descriptors.
func raiseNoFile(tb testing.TB, want uint64) {
	tb.Helper()
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		tb.Fatalf("getrlimit: %v", err)
	}
	if rl.Cur >= want {
		return
	}
	rl.Cur = max(want, min(rl.Max, 1<<20))
	rl.Max = max(rl.Max, rl.Cur) // only root may raise the hard limit
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		tb.Fatalf("raise RLIMIT_NOFILE to %d: %v (ulimit -n is too low for this many agents)", want, err)
	}
}

// clientProcess is the running agents' process.
type clientProcess struct {
	cmd    *exec.Cmd
	stdin  io.Closer
	result chan string   // the CONNECTED line
	exited chan struct{} // closed when its stdout reaches EOF
}

func startClients(dir string) (*clientProcess, error) {
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	cmd := exec.Command(exe, "-test.run=^TestBenchClientProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), clientEnv+"=1", clientDirEnv+"="+dir)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &clientProcess{cmd: cmd, stdin: stdin, result: make(chan string, 1), exited: make(chan struct{})}
	go func() {
		defer close(p.exited)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if line := sc.Text(); strings.HasPrefix(line, resultPrefix) {
				select {
				case p.result <- line:
				default:
				}
			} else {
				fmt.Fprintln(os.Stderr, "bench client:", line)
			}
		}
	}()
	return p, nil
}

// stop closes the process's stdin, which tells it to exit, and kills it
// if it has not within timeout.
func (p *clientProcess) stop(timeout time.Duration) error {
	p.stdin.Close()
	select {
	case <-p.exited:
	case <-time.After(timeout):
		p.cmd.Process.Kill()
		<-p.exited
	}
	return p.cmd.Wait()
}

// TestBenchClientProcess is BenchmarkIdleAgents' agent process, not a
// test: it connects the agents described in $CORDON_BENCH_DIR, says
// "CONNECTED <n> <elapsed ns>" and keeps them idle until stdin closes.
func TestBenchClientProcess(t *testing.T) {
	if os.Getenv(clientEnv) != "1" {
		t.Skip("client process of BenchmarkIdleAgents; runs only when that benchmark starts it")
	}
	dir := os.Getenv(clientDirEnv)
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	n, err := strconv.Atoi(read(nFile))
	if err != nil {
		t.Fatal(err)
	}
	gatewayURL := read(urlFile)
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM([]byte(read(rootFile))) {
		t.Fatal("no root certificate")
	}
	raiseNoFile(t, uint64(n)+512)
	certs := make([]tls.Certificate, n)
	for i := range certs {
		if certs[i], err = tls.LoadX509KeyPair(agentCertFile(dir, i), agentKeyFile(dir, i)); err != nil {
			t.Fatal(err)
		}
		// Like the real agent (agent/state), present only the leaf.
		certs[i].Certificate = certs[i].Certificate[:1]
	}

	var (
		conns = make([]*websocket.Conn, n)
		errs  = make([]error, n)
		next  atomic.Int64
		idle  sync.WaitGroup
		wg    sync.WaitGroup
	)
	start := time.Now()
	for range clientDialers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				ws, err := connectAgent(gatewayURL, roots, certs[i])
				for attempt := 1; err != nil && attempt < 3; attempt++ {
					time.Sleep(time.Duration(attempt) * 100 * time.Millisecond)
					ws, err = connectAgent(gatewayURL, roots, certs[i])
				}
				if err != nil {
					errs[i] = fmt.Errorf("agent %d: %w", i, err)
					next.Store(int64(n))
					return
				}
				conns[i] = ws
				// Reading answers the server's pings; an idle agent
				// receives nothing else. (The benchmark checks that the
				// server still holds every connection after measuring.)
				idle.Go(func() {
					for {
						_, data, err := ws.ReadMessage()
						if err != nil {
							return
						}
						// A command is answered at once, as an agent whose
						// executor is instant would: the latency measured is
						// the server's queue, delivery and result path.
						if env, err := protocol.Decode(data); err == nil && env.Type == protocol.TypeCommand {
							frame, _ := protocol.Encode(protocol.TypeCommandResult, uuid.NewString(), time.Now(),
								protocol.CommandResult{Ref: env.ID, Status: protocol.ResultDone})
							ws.WriteMessage(websocket.TextMessage, frame)
						}
					}
				})
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("%s%d %d\n", resultPrefix, n, elapsed.Nanoseconds())

	io.Copy(io.Discard, os.Stdin) // until the benchmark closes it
	for _, ws := range conns {
		ws.Close()
	}
	idle.Wait()
}

// connectAgent dials the gateway as one agent, says hello and waits for
// the server to acknowledge it.
func connectAgent(gatewayURL string, roots *x509.CertPool, cert tls.Certificate) (*websocket.Conn, error) {
	d := websocket.Dialer{HandshakeTimeout: 30 * time.Second, ReadBufferSize: 512, WriteBufferSize: 1024}
	cfg := fips.TLS(fips.Default())
	cfg.RootCAs, cfg.ServerName, cfg.Certificates = roots, "127.0.0.1", []tls.Certificate{cert}
	ws, resp, err := wshandshake.Dial(context.Background(), d, gatewayURL, cfg, nil)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			return nil, fmt.Errorf("gateway refused: %s", resp.Status)
		}
		return nil, err
	}
	helloID := uuid.NewString()
	hello, err := protocol.Encode(protocol.TypeHello, helloID, time.Now(),
		protocol.Hello{Platform: "linux/amd64", AgentVersion: "bench", Hostname: "bench",
			CapabilityVersion: protocol.CurrentCapabilityVersion, Capabilities: []string{protocol.CapPosture, protocol.CapCommands}})
	if err != nil {
		ws.Close()
		return nil, err
	}
	fail := func(err error) (*websocket.Conn, error) {
		ws.Close()
		return nil, err
	}
	ws.SetWriteDeadline(time.Now().Add(30 * time.Second))
	if err := ws.WriteMessage(websocket.TextMessage, hello); err != nil {
		return fail(fmt.Errorf("send hello: %w", err))
	}
	ws.SetReadDeadline(time.Now().Add(60 * time.Second))
	_, data, err := ws.ReadMessage()
	if err != nil {
		return fail(fmt.Errorf("read ack: %w", err))
	}
	env, err := protocol.Decode(data)
	if err != nil {
		return fail(fmt.Errorf("decode answer to hello: %w", err))
	}
	if env.Type != protocol.TypeAck {
		return fail(fmt.Errorf("server answered hello with %s: %s", env.Type, env.Body))
	}
	var ack protocol.Ack
	if err := protocol.DecodeBody(env, &ack); err != nil || ack.Ref != helloID {
		return fail(fmt.Errorf("bad ack %s (%v)", env.Body, err))
	}
	ws.SetReadDeadline(time.Time{})
	ws.SetWriteDeadline(time.Time{})
	return ws, nil
}

// commandLatency issues count lock commands to random connected agents,
// eight at a time as a busy console would, and measures from the
// command's creation (the moment the API accepts it) to the stored agent
// answer, both server timestamps.
func commandLatency(srv *server.Server, count int) (p50, p99 time.Duration, err error) {
	ctx := context.Background()
	devs, err := srv.Store.ListDevices(ctx)
	if err != nil {
		return 0, 0, err
	}
	ids := make([]string, count)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	next := atomic.Int64{}
	for range 8 {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= count {
					return
				}
				c, err := srv.Commands.Issue(ctx, commands.Request{DeviceID: devs[mrand.IntN(len(devs))].ID,
					Kind: protocol.CommandLock, Actor: "bench", Role: "laso", Source: "local"})
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
				ids[i] = c.ID
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return 0, 0, err
	}
	var lat []time.Duration
	deadline := time.Now().Add(time.Minute)
	for _, id := range ids {
		for {
			c, err := srv.Store.GetCommand(ctx, id)
			if err != nil {
				return 0, 0, err
			}
			if c.CompletedAt != nil {
				lat = append(lat, c.CompletedAt.Sub(c.CreatedAt))
				break
			}
			if time.Now().After(deadline) {
				return 0, 0, fmt.Errorf("command %s still %s after a minute", id, c.Status)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	slices.Sort(lat)
	return lat[len(lat)/2], lat[len(lat)*99/100], nil
}
