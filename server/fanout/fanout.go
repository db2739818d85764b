// Package fanout lets several server processes share one PostgreSQL
// database as one server, through the database alone (no cluster
// protocol of our own): notices on a LISTEN/NOTIFY channel tell the
// process holding a device's connection that another process has
// something for it (a queued command, a changed state, a revocation),
// and advisory locks (leases) let one process at a time run each timed
// job.
//
// A notice carries only its kind, the device's id and the sending
// process's random origin: what the device gets (a command) stays in the
// database, and the process that holds the device reads it from there,
// so a lost notice delays a delivery and never loses one.
package fanout

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Channel is the LISTEN/NOTIFY channel the servers share.
const Channel = "cordon_device"

// Notice is one process asking the others about a device.
type Notice struct {
	Kind, DeviceID string
	// Origin is the sending process's random id; a process skips its own.
	Origin string
}

// Limits of a notice's parts: PostgreSQL caps a payload at 8000 bytes,
// and a device id is a UUID.
const (
	maxKind     = 32
	maxDeviceID = 128
	originLen   = 16
)

// errMalformed is a payload that is not a notice (unexported: nothing
// outside the bus sees it; a bad payload is logged and dropped).
var errMalformed = errors.New("malformed notice")

// format is the payload of n: kind:origin:device.
func format(n Notice) string { return n.Kind + ":" + n.Origin + ":" + n.DeviceID }

// Parse decodes a payload. Anyone who may connect to the database may
// NOTIFY on the channel, so nothing in a payload is trusted beyond its
// shape: a kind of lower-case letters and underscores, a hex origin and
// a device id of printable ASCII without separators.
func Parse(payload string) (Notice, error) {
	kind, rest, ok := strings.Cut(payload, ":")
	if !ok {
		return Notice{}, errMalformed
	}
	origin, dev, ok := strings.Cut(rest, ":")
	if !ok || len(kind) == 0 || len(kind) > maxKind || len(origin) != originLen || len(dev) == 0 || len(dev) > maxDeviceID {
		return Notice{}, errMalformed
	}
	for _, r := range kind {
		if (r < 'a' || r > 'z') && r != '_' {
			return Notice{}, errMalformed
		}
	}
	if _, err := hex.DecodeString(origin); err != nil || strings.ToLower(origin) != origin {
		return Notice{}, errMalformed
	}
	for _, r := range dev {
		if r <= ' ' || r > '~' || r == ':' {
			return Notice{}, errMalformed
		}
	}
	return Notice{Kind: kind, DeviceID: dev, Origin: origin}, nil
}

// Bus is one process's end of the channel and of the leases.
type Bus struct {
	url    string
	log    *slog.Logger
	origin string
	pool   *pgxpool.Pool // NOTIFY
	listen *pgx.Conn     // LISTEN until Run takes it (under leaseMu)
	// minWait and maxWait bound the full-jitter backoff of reconnects.
	minWait, maxWait time.Duration

	// extra are channels other components listen on through the one
	// listening connection (WithChannel).
	extra []channel

	leaseMu sync.Mutex
	lease   *pgx.Conn // the session that holds the advisory locks
	joined  bool      // lease holds the shared process lock
}

// Option configures a Bus.
type Option func(*Bus)

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(b *Bus) { b.log = l } }

// WithBackoff bounds the wait between reconnect attempts (default 100 ms
// to 10 s, full jitter).
func WithBackoff(min, max time.Duration) Option {
	return func(b *Bus) { b.minWait, b.maxWait = min, max }
}

type channel struct {
	name      string
	handle    func(payload string)
	listening func(bool)
}

// WithChannel listens on one more channel through the bus's connection:
// each payload goes to handle, and listening says when delivery starts
// (true, after every LISTEN) and when it is lost (false), for a component
// that may trust what it holds only while it hears of every change.
func WithChannel(name string, handle func(payload string), listening func(bool)) Option {
	return func(b *Bus) { b.extra = append(b.extra, channel{name, handle, listening}) }
}

// Open connects to the database at url and listens on the channel before
// it returns, so that nothing published once the caller serves is
// missed.
func Open(ctx context.Context, url string, opts ...Option) (*Bus, error) {
	var o [originLen / 2]byte
	crand.Read(o[:])
	b := &Bus{url: url, log: slog.New(slog.DiscardHandler), origin: hex.EncodeToString(o[:]),
		minWait: 100 * time.Millisecond, maxWait: 10 * time.Second}
	for _, opt := range opts {
		opt(b)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("fanout: %w", err)
	}
	cfg.MaxConns = 4 // publishing is one short statement
	if b.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return nil, fmt.Errorf("fanout: %w", err)
	}
	if b.listen, err = b.subscribe(ctx); err != nil {
		b.pool.Close()
		return nil, err
	}
	return b, nil
}

// Origin is this process's id in the notices it sends.
func (b *Bus) Origin() string { return b.origin }

func (b *Bus) subscribe(ctx context.Context) (*pgx.Conn, error) {
	c, err := pgx.Connect(ctx, b.url)
	if err != nil {
		return nil, fmt.Errorf("fanout listen: %w", err)
	}
	names := []string{Channel}
	for _, x := range b.extra {
		names = append(names, x.name)
	}
	for _, name := range names {
		if _, err := c.Exec(ctx, "LISTEN "+pgx.Identifier{name}.Sanitize()); err != nil {
			c.Close(context.WithoutCancel(ctx))
			return nil, fmt.Errorf("fanout listen: %w", err)
		}
	}
	for _, x := range b.extra {
		x.listening(true)
	}
	return c, nil
}

// Publish tells the other processes about the device. It returns once
// PostgreSQL has the notice; it is delivered to every listener then.
func (b *Bus) Publish(ctx context.Context, kind, deviceID string) error {
	n := Notice{Kind: kind, DeviceID: deviceID, Origin: b.origin}
	if _, err := Parse(format(n)); err != nil {
		return fmt.Errorf("fanout publish %s for %q: %w", kind, deviceID, err)
	}
	_, err := b.pool.Exec(ctx, "SELECT pg_notify($1, $2)", Channel, format(n))
	return err
}

// Run hands each other process's notice to handle until ctx ends. When
// the listening connection breaks it reconnects with backoff and then
// calls resync, since notices sent while it was away are gone: resync
// redoes from the database what they would have asked for.
func (b *Bus) Run(ctx context.Context, handle func(context.Context, Notice), resync func(context.Context)) {
	b.leaseMu.Lock()
	c := b.listen
	b.listen = nil // Run's now; Close leaves it to Run
	b.leaseMu.Unlock()
	defer func() {
		for _, x := range b.extra {
			x.listening(false) // nobody hears of changes any more
		}
		if c != nil {
			c.Close(context.WithoutCancel(ctx))
		}
	}()
	for {
		for c == nil {
			var err error
			if c, err = b.subscribe(ctx); err != nil {
				if ctx.Err() != nil {
					return
				}
				b.log.Warn("fanout: listen failed; retrying", "err", err)
				if !b.wait(ctx) {
					return
				}
				continue
			}
			b.log.Info("fanout: listening again; resynchronising the devices held here")
			resync(ctx)
		}
		n, err := c.WaitForNotification(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			b.log.Warn("fanout: listening connection lost", "err", err)
			for _, x := range b.extra {
				x.listening(false)
			}
			c.Close(context.WithoutCancel(ctx))
			c = nil
			b.wait(ctx)
			continue
		}
		if x := b.channel(n.Channel); x != nil {
			x.handle(n.Payload)
			continue
		}
		notice, err := Parse(n.Payload)
		if err != nil {
			b.log.Warn("fanout: notice ignored", "err", err, "payload_bytes", len(n.Payload))
			continue
		}
		if notice.Origin != b.origin {
			handle(ctx, notice)
		}
	}
}

func (b *Bus) channel(name string) *channel {
	for i := range b.extra {
		if b.extra[i].name == name {
			return &b.extra[i]
		}
	}
	return nil
}

// wait sleeps a full-jitter backoff; false when ctx ended first.
func (b *Bus) wait(ctx context.Context) bool {
	d := b.minWait + rand.N(b.maxWait-b.minWait+1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Close releases the pool and the leases' session, and every lease with
// it. The listening connection is Run's, closed when its ctx ends; if
// Run never ran, Close closes it.
func (b *Bus) Close() {
	b.leaseMu.Lock()
	defer b.leaseMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, c := range []*pgx.Conn{b.lease, b.listen} {
		if c != nil {
			c.Close(ctx)
		}
	}
	b.lease, b.listen = nil, nil
	b.pool.Close()
}

// key is a job's advisory lock id: the high bit set and a name hash
// below, apart from the small constants the store and goose use.
func key(job string) int64 {
	h := fnv.New64a()
	h.Write([]byte("cordon/lease/" + job))
	return int64(h.Sum64() | 1<<62)
}
