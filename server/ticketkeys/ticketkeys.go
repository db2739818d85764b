// Package ticketkeys keeps the agent listener's TLS session-ticket keys
// across restarts and, on a shared database, across server processes, so
// that an agent reconnecting after a restart (or to another process
// behind the load balancer) resumes its TLS session instead of running a
// full handshake: in a reconnect storm the handshakes are what the
// server's CPU is spent on.
//
// Time is cut into epochs of one rotation period. The key of epoch n
// encrypts the tickets issued during it; the key of epoch n+1 is made
// one period ahead, so every process already decrypts with it when a
// process whose clock is a little ahead starts encrypting with it; keys
// of past epochs keep decrypting for the tickets' lifetime, then are
// deleted. A key is made by whichever process needs it first: the store
// keeps the first key written for an epoch, and every process then reads
// that one.
//
// A ticket key lets its holder forge a session for any device
// certificate, so keys are never logged (Key redacts itself) and, in a
// database, are stored sealed with a key that only the data dir holds
// (Sealed).
package ticketkeys

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// Key is one epoch's ticket key.
type Key struct {
	Epoch  int64
	Secret [32]byte
}

// String keeps the secret out of logs and error messages.
func (k Key) String() string { return "ticket key (redacted)" }

// LogValue keeps the secret out of structured logs.
func (k Key) LogValue() slog.Value { return slog.StringValue(k.String()) }

// Store keeps keys between restarts and processes.
type Store interface {
	// Keys returns every stored key of epoch from or later.
	Keys(ctx context.Context, from int64) ([]Key, error)
	// Add stores k unless its epoch has a key already (the first one
	// written stays).
	Add(ctx context.Context, k Key) error
	// Prune deletes the keys of epochs before before.
	Prune(ctx context.Context, before int64) error
}

// Defaults: a new key every day, tickets honoured for crypto/tls's
// longest ticket lifetime, keys reloaded often enough that a key made by
// another process is known long before it encrypts anything.
const (
	DefaultPeriod   = 24 * time.Hour
	DefaultLifetime = 7 * 24 * time.Hour
	DefaultReload   = 10 * time.Minute
)

// Rotator loads, rotates and installs the keys.
type Rotator struct {
	store    Store
	log      *slog.Logger
	now      func() time.Time
	period   time.Duration
	lifetime time.Duration
	reload   time.Duration

	mu      sync.Mutex
	keys    [][32]byte // encrypting key first
	configs []*tls.Config
}

// Option configures a Rotator.
type Option func(*Rotator)

// WithPeriod sets how long one key encrypts (default a day).
func WithPeriod(d time.Duration) Option { return func(r *Rotator) { r.period = d } }

// WithLifetime sets how long a key decrypts after it stopped encrypting
// (default 7 days, the longest ticket crypto/tls honours).
func WithLifetime(d time.Duration) Option { return func(r *Rotator) { r.lifetime = d } }

// WithReload sets how often Run reloads the keys (default 10 minutes).
func WithReload(d time.Duration) Option { return func(r *Rotator) { r.reload = d } }

// WithClock replaces the clock (tests).
func WithClock(now func() time.Time) Option { return func(r *Rotator) { r.now = now } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(r *Rotator) { r.log = l } }

// New returns a Rotator over st. Call Refresh before serving and Run to
// keep the keys current.
func New(st Store, opts ...Option) *Rotator {
	r := &Rotator{store: st, log: slog.New(slog.DiscardHandler), now: time.Now,
		period: DefaultPeriod, lifetime: DefaultLifetime, reload: DefaultReload}
	for _, o := range opts {
		o(r)
	}
	return r
}

func (r *Rotator) epoch(t time.Time) int64 { return t.UnixNano() / int64(r.period) }

// retained is how many past epochs still decrypt.
func (r *Rotator) retained() int64 { return int64((r.lifetime + r.period - 1) / r.period) }

// Refresh makes the current and the next epoch's keys if no process has
// yet, deletes keys past their lifetime, and installs what the store
// holds in every attached config. On an error the keys installed before
// stay.
func (r *Rotator) Refresh(ctx context.Context) error {
	cur := r.epoch(r.now())
	from := cur - r.retained()
	have, err := r.store.Keys(ctx, from)
	if err != nil {
		return err
	}
	for _, e := range []int64{cur, cur + 1} {
		if !slices.ContainsFunc(have, func(k Key) bool { return k.Epoch == e }) {
			k := Key{Epoch: e}
			rand.Read(k.Secret[:]) // crypto/rand.Read never fails (Go ≥1.24)
			if err := r.store.Add(ctx, k); err != nil {
				return err
			}
		}
	}
	if err := r.store.Prune(ctx, from); err != nil {
		return err
	}
	// Read back: another process may have written its key first.
	if have, err = r.store.Keys(ctx, from); err != nil {
		return err
	}
	keys := order(have, cur)
	if len(keys) == 0 || !slices.ContainsFunc(have, func(k Key) bool { return k.Epoch == cur }) {
		return errors.New("ticketkeys: the store returned no key for the current epoch")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.keys = keys
	for _, c := range r.configs {
		c.SetSessionTicketKeys(r.keys)
	}
	return nil
}

// order puts the current epoch's key first (crypto/tls encrypts with the
// first), then the next epoch's, then the past ones, newest first.
func order(have []Key, cur int64) [][32]byte {
	ks := slices.Clone(have)
	rank := func(e int64) int64 {
		switch {
		case e == cur:
			return -2
		case e > cur:
			return -1
		}
		return cur - e
	}
	slices.SortFunc(ks, func(a, b Key) int { return int(rank(a.Epoch) - rank(b.Epoch)) })
	out := make([][32]byte, 0, len(ks))
	for _, k := range ks {
		if k.Epoch <= cur+1 {
			out = append(out, k.Secret)
		}
	}
	return out
}

// Attach makes cfg use the keys, now and after every refresh. cfg must
// be the config the listener hands to tls.Server, not a copy of it.
func (r *Rotator) Attach(cfg *tls.Config) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.configs = append(r.configs, cfg)
	if len(r.keys) > 0 {
		cfg.SetSessionTicketKeys(r.keys)
	}
}

// Run refreshes the keys every reload interval until ctx is done. A
// failed refresh is logged and retried at the next; the installed keys
// keep serving meanwhile.
func (r *Rotator) Run(ctx context.Context) {
	t := time.NewTicker(r.reload)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := r.Refresh(ctx); err != nil && ctx.Err() == nil {
				r.log.Warn("session ticket keys not refreshed", "err", err)
			}
		}
	}
}
