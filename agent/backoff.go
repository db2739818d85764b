package agent

import (
	"crypto/rand"
	"errors"
	"math/big"
	"time"

	"github.com/cordon-mdm/cordon/protocol"
)

// defaultSpread is the first retry's window before any server has sent a
// reconnect hint (an older server): wide enough that a fleet does not
// arrive within the handshake timeout, short for a lone agent.
const defaultSpread = 10 * time.Second

// backoff is "full jitter": uniform in [0, min(max, base·2^attempt)), so
// a fleet reconnecting after a server restart spreads out instead of
// arriving in lockstep.
func (a *Agent) backoff(attempt int) time.Duration { return uniform(a.backoffCeil(attempt)) }

func (a *Agent) backoffCeil(attempt int) time.Duration {
	if attempt < 30 {
		return min(a.backoffMax, a.backoffBase<<attempt)
	}
	return a.backoffMax
}

// spreadWindow is the window of the first retry after losing the server:
// the server's last hint (its fleet over the handshakes per second it
// takes), or defaultSpread without one; never below the backoff base nor
// above the backoff maximum and protocol.MaxReconnectSpread.
func (a *Agent) spreadWindow() time.Duration {
	w := defaultSpread
	if ms := a.spread.Load(); ms >= 0 {
		w = time.Duration(ms) * time.Millisecond
	}
	return max(a.backoffBase, min(w, a.backoffMax, protocol.MaxReconnectSpread))
}

// firstRetry is the wait after an established session ended: uniform
// over the spread window, so the whole fleet of a server that went away
// arrives at about the rate that server can take.
func (a *Agent) firstRetry() time.Duration { return uniform(a.spreadWindow()) }

// retryDelay is the wait after a failed attempt (attempt counts the
// failures since the last established session). A server that turned the
// agent away asked for a wait: Retry-After, drawn from [Retry-After,
// 2·Retry-After) so that the refused do not come back together, or, for
// a refusal before the handshake, the spread window again (the fleet is
// still arriving) unless the backoff has grown past it.
func (a *Agent) retryDelay(attempt int, err error) time.Duration {
	var busy *busyError
	if errors.As(err, &busy) {
		if busy.retryAfter > 0 {
			ra := min(busy.retryAfter, protocol.MaxReconnectSpread, a.backoffMax)
			return ra + uniform(ra)
		}
		return uniform(max(a.spreadWindow(), a.backoffCeil(attempt)))
	}
	return a.backoff(attempt)
}

// hinted keeps the server's reconnect hint for the agent's life.
func (a *Agent) hinted(env protocol.Envelope) {
	var h protocol.ReconnectHint
	if err := protocol.DecodeBody(env, &h); err != nil {
		a.log.Warn("reconnect hint ignored", "err", err)
		return
	}
	a.spread.Store(h.SpreadMS)
}

func uniform(ceil time.Duration) time.Duration {
	if ceil <= 0 {
		return 0
	}
	n, err := rand.Int(rand.Reader, big.NewInt(int64(ceil)))
	if err != nil {
		return ceil
	}
	return time.Duration(n.Int64())
}

// busyError is a server turning the agent away for load: before the TLS
// handshake completed (admission control), or with 503 after it.
type busyError struct {
	retryAfter time.Duration // from a 503's Retry-After; 0 before the handshake
	err        error
}

func (e *busyError) Error() string { return "gateway busy: " + e.err.Error() }
func (e *busyError) Unwrap() error { return e.err }
