package gateway

import (
	"crypto/tls"
	"math"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/cordon-mdm/cordon/internal/httpjson"
	"github.com/cordon-mdm/cordon/protocol"
)

// admission is the gateway's defence against a reconnect storm: bounded
// handshakes (handshakeListener), bounded upgrades (each costs store
// writes), and the reconnect hint that spreads the fleet's return.
type admission struct {
	perCore  int
	upgrades chan struct{}
	hintTick time.Duration

	mu       sync.Mutex
	ln       *handshakeListener
	lastSent time.Duration // spread last broadcast
}

// WithHandshakeLimit bounds the TLS handshakes in progress to perCore
// per CPU (default DefaultHandshakesPerCore), and the websocket upgrades
// in progress to as many; connections beyond are refused at once with a
// retry hint rather than left to time out.
func WithHandshakeLimit(perCore int) Option {
	return func(g *Gateway) {
		if perCore > 0 {
			g.admit.perCore = perCore
		}
	}
}

// WithReconnectHintInterval sets how often the reconnect hint is
// recomputed and, when it changed much, sent again (default 10 s).
func WithReconnectHintInterval(d time.Duration) Option {
	return func(g *Gateway) { g.admit.hintTick = d }
}

func (a *admission) slots() int {
	return max(a.perCore, 1) * runtime.GOMAXPROCS(0)
}

// listen wraps inner in the admission-controlled handshake listener and
// starts the reconnect hint's upkeep.
func (g *Gateway) listen(inner net.Listener, cfg *tls.Config) net.Listener {
	a := &g.admit
	if a.perCore == 0 {
		a.perCore = DefaultHandshakesPerCore
	}
	ln := newHandshakeListener(inner, cfg, g.handshakeTimeout, a.slots(), g.handshakeFailed, g.metrics)
	a.mu.Lock()
	a.ln = ln
	a.upgrades = make(chan struct{}, a.slots())
	a.mu.Unlock()
	g.wg.Add(1)
	go g.hintLoop()
	return ln
}

// reconnectSpread is the window over which the agents connected here
// should spread their return: their number over the handshakes per
// second the server can take, at most protocol.MaxReconnectSpread.
func (g *Gateway) reconnectSpread() time.Duration {
	g.admit.mu.Lock()
	ln := g.admit.ln
	g.admit.mu.Unlock()
	if ln == nil {
		return 0
	}
	secs := float64(g.hub.count()) / ln.rate()
	return min(time.Duration(secs*float64(time.Second)), protocol.MaxReconnectSpread).Round(time.Millisecond)
}

// sendReconnectHint tells c's agent the current spread, if it takes it.
// An agent that does not is not logged (as accepts would): it simply
// keeps its own default.
func (c *conn) sendReconnectHint() {
	c.capMu.Lock()
	takes := c.helloed && protocol.Accepts(c.capVersion, c.caps, protocol.TypeReconnectHint)
	c.capMu.Unlock()
	if takes {
		c.send(protocol.TypeReconnectHint, protocol.ReconnectHint{SpreadMS: c.g.reconnectSpread().Milliseconds()})
	}
}

// hintLoop recomputes the spread every tick and, when it moved by more
// than a quarter (and a second) since it was last sent, sends it to every
// agent: each connected agent holds a hint near the fleet's present size
// for the moment the server dies without a word. It also logs the
// handshakes refused since the last tick.
func (g *Gateway) hintLoop() {
	defer g.wg.Done()
	tick := g.admit.hintTick
	if tick <= 0 {
		tick = 10 * time.Second
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	var refused int64
	for {
		select {
		case <-g.ctx.Done():
			return
		case <-t.C:
		}
		if n := g.admit.ln.refused.Load(); n != refused {
			g.log.Info("agent handshakes refused by admission control", "refused", n-refused,
				"limit", g.admit.slots(), "spread", g.reconnectSpread())
			refused = n
		}
		d := g.reconnectSpread()
		last := g.admit.lastSent
		if math.Abs(float64(d-last)) <= max(float64(last)/4, float64(time.Second)) {
			continue
		}
		g.admit.lastSent = d
		for _, c := range g.hub.snapshot() {
			if g.ctx.Err() != nil {
				return
			}
			c.sendReconnectHint()
		}
	}
}

// admitUpgrade takes one of the bounded upgrade slots, or answers 503
// with Retry-After: the TLS handshake is done (and its session ticket
// issued, so the retry resumes cheaply), but the connect's store writes
// would only queue. A gateway shutting down answers the same.
func (g *Gateway) admitUpgrade(w http.ResponseWriter) (release func(), ok bool) {
	if g.admit.upgrades == nil {
		return func() {}, true // served through another listener: no bound here
	}
	if !g.closing.Load() {
		select {
		case g.admit.upgrades <- struct{}{}:
			return func() { <-g.admit.upgrades }, true
		default:
		}
	}
	w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(g.reconnectSpread().Seconds()/2)))))
	httpjson.Error(w, http.StatusServiceUnavailable, "gateway busy; retry later")
	return nil, false
}

// tlsResumed says, for the connect audit entry, whether the agent's TLS
// session was resumed (from a ticket, possibly issued before a restart).
func tlsResumed(ws *websocket.Conn) string {
	tc, ok := ws.NetConn().(*tls.Conn)
	return strconv.FormatBool(ok && tc.ConnectionState().DidResume)
}
