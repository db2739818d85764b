package fanout

import (
	"context"
	"encoding/binary"
	"encoding/hex"
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
		if err := b.hold(ctx, c); err != nil {
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
	if err := b.hold(ctx, c); err != nil {
		b.broken(c)
		return fmt.Errorf("fanout join: %w", err)
	}
	b.joined = true
	return nil
}

// hold takes, on c, the locks of a process that is up: the process lock
// and its own origin's (Live), both shared.
func (b *Bus) hold(ctx context.Context, c *pgx.Conn) error {
	_, err := c.Exec(ctx, "SELECT pg_advisory_lock_shared($1), pg_advisory_lock_shared($2)", processesKey, b.originKey())
	return err
}

// originKey is the advisory lock that says this process is up: its
// origin, 8 random bytes, read as the bigint key. (A collision with a
// job's key, one in 2^64 per job, would only keep that job in the
// others.)
func (b *Bus) originKey() int64 {
	o, _ := hex.DecodeString(b.origin) // made by Open: 16 hex digits
	return int64(binary.BigEndian.Uint64(o))
}

// Live lists the origins of the processes up on this database: those
// whose origin lock (hold) is held now, on a session PostgreSQL still
// has. A process that died (kill -9) lost its session and is not
// listed; its devices are nobody's (store.Store.ReapOnline). This
// process is listed while it is joined. A shared advisory lock on a
// bigint key is listed with objsubid 1, the key's high half in classid
// and its low half in objid; job leases are exclusive and the process
// lock is left out by its key.
func (b *Bus) Live(ctx context.Context) ([]string, error) {
	rows, err := b.pool.Query(ctx, `SELECT DISTINCT (classid::bigint << 32) | objid::bigint FROM pg_locks
		WHERE locktype = 'advisory' AND objsubid = 1 AND mode = 'ShareLock' AND granted
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`)
	if err != nil {
		return nil, fmt.Errorf("fanout live: %w", err)
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("fanout live: %w", err)
	}
	var live []string
	for _, k := range keys {
		if k != processesKey {
			live = append(live, fmt.Sprintf("%016x", uint64(k)))
		}
	}
	return live, nil
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
