package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultHandshakesPerCore bounds the TLS handshakes in progress per CPU.
// A handshake holds its slot through network round trips as well as
// ECDHE and signatures, so the bound sits well above one per core; what
// it prevents is thousands of handshakes sharing two cores, each slowed
// past the handshake timeout, so that all the work is wasted.
const DefaultHandshakesPerCore = 32

// maxRefusing bounds the refusals in progress (each reads the client's
// hello for at most refuseWait): beyond it a connection is closed unread.
const (
	maxRefusing = 4096
	refuseWait  = time.Second
)

// handshakeListener completes TLS handshakes before handing connections to
// net/http. net/http only logs a failed handshake; Cordon must audit each
// refused device certificate with the address it came from, so the
// handshake happens here, one goroutine per pending connection (a slow
// client cannot stall Accept), bounded by a timeout.
//
// It is also the gateway's admission control: at most slots handshakes
// run at once, and a connection beyond them is refused at once with a TLS
// alert, before any cryptography, instead of queueing into the timeout.
// The agent then waits as the server's reconnect hint says.
type handshakeListener struct {
	inner   net.Listener
	cfg     *tls.Config
	timeout time.Duration
	onFail  func(remote string, err error)
	metrics *metrics

	slots    chan struct{}
	refusing chan struct{}
	refused  atomic.Int64
	// cost is the moving average, in nanoseconds, of handshakes that ran
	// with no more in flight than there are cores: near what one costs
	// the CPU, from which the rate the server can take is estimated.
	cost atomic.Int64
	// seen is the most handshakes completed in one second so far.
	seen meter

	conns     chan net.Conn
	done      chan struct{}
	closeOnce sync.Once
	errMu     sync.Mutex
	err       error
}

func newHandshakeListener(inner net.Listener, cfg *tls.Config, timeout time.Duration, slots int, onFail func(string, error), m *metrics) *handshakeListener {
	l := &handshakeListener{inner: inner, cfg: cfg, timeout: timeout, onFail: onFail, metrics: m,
		slots: make(chan struct{}, max(slots, 1)), refusing: make(chan struct{}, maxRefusing),
		conns: make(chan net.Conn), done: make(chan struct{})}
	l.cost.Store(int64(2 * time.Millisecond))
	go l.acceptLoop()
	return l
}

func (l *handshakeListener) acceptLoop() {
	var delay time.Duration
	for {
		c, err := l.inner.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) || isTemporary(err) {
				// Out of file descriptors and similar: back off as net/http does.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				select {
				case <-time.After(delay):
					continue
				case <-l.done:
					return
				}
			}
			l.errMu.Lock()
			l.err = err
			l.errMu.Unlock()
			l.Close()
			return
		}
		delay = 0
		select {
		case l.slots <- struct{}{}:
			go l.handshake(c)
		default:
			l.refused.Add(1)
			l.metrics.handshakes.WithLabelValues(OutcomeAdmissionLimited).Inc()
			select {
			case l.refusing <- struct{}{}:
				go l.refuse(c)
			default:
				c.Close()
			}
		}
	}
}

func isTemporary(err error) bool {
	t, ok := err.(interface{ Temporary() bool })
	return ok && t.Temporary()
}

func (l *handshakeListener) handshake(c net.Conn) {
	uncontended := len(l.slots) <= runtime.GOMAXPROCS(0)
	start := time.Now()
	tc := tls.Server(c, l.cfg)
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	<-l.slots
	l.metrics.handshakeDone(err, tc.ConnectionState().DidResume, time.Since(start))
	if err != nil {
		if tc.ConnectionState().DidResume {
			err = fmt.Errorf("%w (%w)", err, errResumed)
		}
		if !uninteresting(err) {
			l.onFail(c.RemoteAddr().String(), err)
		}
		c.Close()
		return
	}
	if uncontended {
		old := l.cost.Load()
		l.cost.Store(old + (int64(time.Since(start))-old)/8)
	}
	l.seen.add(time.Now())
	select {
	case l.conns <- tc:
	case <-l.done:
		tc.Close()
	}
}

// errResumed marks a handshake that failed on a resumed session: its
// refusal's audit entry says so (a revoked device that kept its ticket).
var errResumed = errors.New("on a resumed TLS session")

// alertInternalError is a plaintext fatal TLS alert record (RFC 8446
// §6: level 2, internal_error, "unrelated to the peer ... impossible to
// continue"): legal before the handshake, it tells the client that the
// server turned it away rather than the network dropping it.
var alertInternalError = []byte{21, 3, 3, 0, 2, 2, 80}

// refuse turns a connection away without a handshake: it reads what the
// client sent (its hello; closing on unread data would reset the
// connection, and the client might lose the alert), writes the alert and
// closes.
func (l *handshakeListener) refuse(c net.Conn) {
	defer func() { <-l.refusing }()
	defer c.Close()
	c.SetDeadline(time.Now().Add(refuseWait))
	var hdr [5]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return
	}
	if n := int(hdr[3])<<8 | int(hdr[4]); hdr[0] == 22 && n <= 1<<14 {
		io.CopyN(io.Discard, c, int64(n))
	}
	c.Write(alertInternalError)
}

// rate is about how many handshakes per second the server can complete:
// the estimate from a handshake's cost, or what it has been seen to
// complete in one second if more. The cost is wall time, and includes
// round trips and waiting for a core the server shares, so alone it
// underestimates (a measured storm spread over the 60 s cap when the
// server took the fleet in 40 s); what was achieved is a floor.
func (l *handshakeListener) rate() float64 {
	cost := time.Duration(l.cost.Load())
	return max(float64(runtime.GOMAXPROCS(0))/max(cost, 50*time.Microsecond).Seconds(), float64(l.seen.peak()))
}

// meter keeps the most events counted in one wall-clock second.
type meter struct {
	mu      sync.Mutex
	second  int64
	n, most int
}

func (m *meter) add(at time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s := at.Unix(); s != m.second {
		m.second, m.n = s, 0
	}
	m.n++
	m.most = max(m.most, m.n)
}

func (m *meter) peak() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.most
}

// uninteresting handshake failures are port scans and dropped
// connections: nothing was presented that deserves an audit entry.
func uninteresting(err error) bool {
	var re tls.RecordHeaderError
	return errors.Is(err, io.EOF) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, net.ErrClosed) || errors.As(err, &re)
}

func (l *handshakeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		l.errMu.Lock()
		defer l.errMu.Unlock()
		if l.err != nil {
			return nil, l.err
		}
		return nil, net.ErrClosed
	}
}

func (l *handshakeListener) Close() error {
	var err error
	l.closeOnce.Do(func() {
		close(l.done)
		err = l.inner.Close()
	})
	return err
}

func (l *handshakeListener) Addr() net.Addr { return l.inner.Addr() }
