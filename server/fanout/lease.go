package fanout

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// processesKey is the advisory lock every running process holds shared:
// whoever gets it exclusively is the only one up.
var processesKey = key("processes")

// session is the leases' connection, opened again when it broke. Leases
// on a broken session are gone with it; the process lock is taken again.
// Called with leaseMu held.
func (b *Bus) session(ctx context.Context) (*pgx.Conn, error) {
	if b.lease != nil && !b.lease.IsClosed() {
		return b.lease, nil
	}
	c, err := pgx.Connect(ctx, b.url)
	if err != nil {
		return nil, fmt.Errorf("fanout lease session: %w", err)
	}
	if b.joined {
		if _, err := c.Exec(ctx, "SELECT pg_advisory_lock_shared($1)", processesKey); err != nil {
			c.Close(context.WithoutCancel(ctx))
			return nil, fmt.Errorf("fanout lease session: %w", err)
		}
	}
	b.lease = c
	return c, nil
}

// broken drops the session after a failed statement, so the next call
// opens a fresh one (and PostgreSQL releases whatever the old one held).
func (b *Bus) broken(c *pgx.Conn) {
	if b.lease == c {
		c.Close(context.Background())
		b.lease = nil
	}
}

// Lease takes the job's lease unless another process holds it. ok is
// false while another process runs the job: it is doing this round's
// work, so this process skips it. release gives the lease back. A lease
// is a session advisory lock, so a process that dies (kill -9) loses
// its session and every lease with it, at once.
func (b *Bus) Lease(ctx context.Context, job string) (release func(), ok bool, err error) {
	b.leaseMu.Lock()
	defer b.leaseMu.Unlock()
	c, err := b.session(ctx)
	if err != nil {
		return nil, false, err
	}
	k := key(job)
	if err := c.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", k).Scan(&ok); err != nil {
		b.broken(c)
		return nil, false, fmt.Errorf("fanout lease %s: %w", job, err)
	}
	if !ok {
		return nil, false, nil
	}
	return func() {
		b.leaseMu.Lock()
		defer b.leaseMu.Unlock()
		if b.lease != c {
			return // the session broke; the lock went with it
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := c.Exec(ctx, "SELECT pg_advisory_unlock($1)", k); err != nil {
			b.log.Warn("fanout: lease release failed; dropping the session", "job", job, "err", err)
			b.broken(c)
		}
	}, true, nil
}

// Join runs first only when no other process is up, then counts this
// process as up for as long as it runs (the process lock, shared). A
// process starting beside a first one still in first waits for it.
func (b *Bus) Join(ctx context.Context, first func(context.Context) error) error {
	b.leaseMu.Lock()
	defer b.leaseMu.Unlock()
	c, err := b.session(ctx)
	if err != nil {
		return err
	}
	var alone bool
	if err := c.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", processesKey).Scan(&alone); err != nil {
		b.broken(c)
		return fmt.Errorf("fanout join: %w", err)
	}
	if alone {
		ferr := first(ctx)
		if _, err := c.Exec(ctx, "SELECT pg_advisory_unlock($1)", processesKey); err != nil {
			b.broken(c)
			return fmt.Errorf("fanout join: %w", err)
		}
		if ferr != nil {
			return ferr
		}
	}
	if _, err := c.Exec(ctx, "SELECT pg_advisory_lock_shared($1)", processesKey); err != nil {
		b.broken(c)
		return fmt.Errorf("fanout join: %w", err)
	}
	b.joined = true
	return nil
}

// Alone reports whether no other process is up: at shutdown, the last
// one may mark every device offline.
func (b *Bus) Alone(ctx context.Context) (bool, error) {
	b.leaseMu.Lock()
	defer b.leaseMu.Unlock()
	c, err := b.session(ctx)
	if err != nil {
		return false, err
	}
	if b.joined {
		if _, err := c.Exec(ctx, "SELECT pg_advisory_unlock_shared($1)", processesKey); err != nil {
			b.broken(c)
			return false, err
		}
		b.joined = false
	}
	var alone bool
	if err := c.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", processesKey).Scan(&alone); err != nil {
		b.broken(c)
		return false, err
	}
	// Held until Close: a process starting now waits in Join until this
	// one is gone, rather than finding its devices marked offline.
	return alone, nil
}
