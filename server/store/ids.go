package store

import (
	"context"
	"sync"
	"time"
)

// IdentityChannel is the PostgreSQL notification channel on which every
// change to what a handshake reads (a revocation, a renewal, an
// enrollment) is announced, in the transaction that makes it, so that it
// is delivered only once committed. The payload is "cert:<serial>" or
// "device:<id>": a process that LISTENs passes it to Forget. Nothing
// listens unless the server wires it (WithSharedIdentities).
const IdentityChannel = "cordon_identity"

// DeviceIdentity is what the gateway's handshake needs of a device, the
// part of it that changes only when the device is enrolled or revoked.
type DeviceIdentity struct {
	ID         string
	Status     string
	EnrolledAt time.Time
}

// identities holds, in memory, the certificate records and device
// identities handshakes have read, so that a reconnect storm costs the
// database nothing. Only records that exist are kept: an unknown serial
// is asked again (a device enrolled since, by this process or another,
// is found). Every change through the store forgets what it changed once
// its transaction has ended; gen makes a read that raced such a change
// not keep what it read.
type identities struct {
	mu sync.Mutex
	// on: cache at all. On SQLite always (one process writes the file;
	// the admin CLI changes no certificate or device). On PostgreSQL only
	// when other processes' changes are delivered (WithSharedIdentities).
	on    bool
	gen   uint64
	certs map[string]Certificate
	devs  map[string]DeviceIdentity
	max   int
}

func newIdentities() *identities {
	return &identities{certs: map[string]Certificate{}, devs: map[string]DeviceIdentity{}, max: 500_000}
}

// WithSharedIdentities says another component delivers the identity
// changes other processes make on the same PostgreSQL database (LISTEN on
// IdentityChannel, each payload passed to Forget, and ForgetAll whenever
// the listening connection was lost): only then does a PostgreSQL store
// keep handshake records in memory. Without it every handshake asks the
// database, because a revocation made by another process would otherwise
// go unseen. SQLite stores always keep them.
func WithSharedIdentities() Option { return func(s *Store) { s.ids.on = true } }

// ShareIdentities turns keeping handshake records on or off while the
// store is open, forgetting what is held either way: on once another
// process's changes are delivered (the LISTEN on IdentityChannel is up),
// off the moment that delivery is lost, since a change made while nobody
// listens is never announced again. SQLite stores keep them regardless.
func (s *Store) ShareIdentities(on bool) {
	c := s.ids
	c.mu.Lock()
	c.on = on
	c.mu.Unlock()
	s.ForgetAll()
}

// HandshakeCertificate is GetCertificate answered from memory when the
// record was read before and has not changed since.
func (s *Store) HandshakeCertificate(ctx context.Context, serial string) (*Certificate, error) {
	c := s.ids
	c.mu.Lock()
	if r, ok := c.certs[serial]; ok {
		c.mu.Unlock()
		return &r, nil
	}
	gen, on := c.gen, c.on || s.dialect == "sqlite"
	c.mu.Unlock()
	r, err := s.GetCertificate(ctx, serial)
	if err == nil && on {
		c.keep(gen, func() { c.certs[serial] = *r })
	}
	return r, err
}

// HandshakeDevice is the identity of device id, answered from memory
// like HandshakeCertificate.
func (s *Store) HandshakeDevice(ctx context.Context, id string) (*DeviceIdentity, error) {
	c := s.ids
	c.mu.Lock()
	if d, ok := c.devs[id]; ok {
		c.mu.Unlock()
		return &d, nil
	}
	gen, on := c.gen, c.on || s.dialect == "sqlite"
	c.mu.Unlock()
	var d DeviceIdentity
	err := s.with(ctx).Model(&Device{}).Select("id", "status", "enrolled_at").Where("id = ?", id).Take(&d).Error
	if err != nil {
		return nil, notFound(err)
	}
	if on {
		c.keep(gen, func() { c.devs[id] = d })
	}
	return &d, nil
}

// keep stores a record read at generation gen, unless something was
// forgotten since: the read may have seen the state before that change.
func (c *identities) keep(gen uint64, put func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if len(c.certs)+len(c.devs) >= c.max {
		clear(c.certs)
		clear(c.devs)
	}
	put()
}

// Forget drops what memory holds of one identity change: a payload of
// IdentityChannel ("cert:<serial>" or "device:<id>"). The next handshake
// that needs it reads the database.
func (s *Store) Forget(payload string) {
	c := s.ids
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	switch {
	case len(payload) > 5 && payload[:5] == "cert:":
		delete(c.certs, payload[5:])
	case len(payload) > 7 && payload[:7] == "device:":
		delete(c.devs, payload[7:])
	default:
		clear(c.certs)
		clear(c.devs)
	}
}

// ForgetAll drops every handshake record held in memory.
func (s *Store) ForgetAll() { s.Forget("") }

// identitiesChanged, called inside the transaction that changes them,
// announces the changed certificates and devices to other processes
// (PostgreSQL, on commit) and has this process forget them once the
// transaction has ended. s must be a transaction's store (InTx).
func (s *Store) identitiesChanged(ctx context.Context, serials, devices []string) error {
	payloads := make([]string, 0, len(serials)+len(devices))
	for _, sr := range serials {
		payloads = append(payloads, "cert:"+sr)
	}
	for _, d := range devices {
		payloads = append(payloads, "device:"+d)
	}
	*s.changed = append(*s.changed, func() {
		for _, p := range payloads {
			s.Forget(p)
		}
	})
	if s.dialect != "postgres" {
		return nil
	}
	for _, p := range payloads {
		if err := s.with(ctx).Exec("SELECT pg_notify(?, ?)", IdentityChannel, p).Error; err != nil {
			return err
		}
	}
	return nil
}
