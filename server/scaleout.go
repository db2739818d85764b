package server

import (
	"context"
	"log/slog"
	"slices"
	"time"

	"github.com/cordon-mdm/cordon/server/fanout"
	"github.com/cordon-mdm/cordon/server/store"
)

// Several server processes may serve one PostgreSQL (issue 18): what one
// of them cannot push to a device it does not hold, it asks the others
// through the database (server/fanout), and each timed job runs in one
// process at a time under a lease. On SQLite there is one process and
// all of this is in-process: no relay, and every lease is granted.

// leaser grants the lease of one timed job (see Server.once).
type leaser interface {
	Lease(ctx context.Context, job string) (release func(), ok bool, err error)
}

// oneProcess is the leaser of a database only one process opens.
type oneProcess struct{}

func (oneProcess) Lease(context.Context, string) (func(), bool, error) { return func() {}, true, nil }

// busRelay sends the hub's asks on the bus, from a queue of its own: an
// ask is made on a connect or inside an API call, which must not wait for
// the database. A full queue drops the ask; nothing is lost by that: a
// command stays queued and the state stays stored, and the device gets
// both at its next hello.
type busRelay struct {
	bus   *fanout.Bus
	log   *slog.Logger
	queue chan fanout.Notice
}

// relayQueue bounds the asks waiting to be sent (a reconnect storm asks
// once per connect).
const relayQueue = 8192

func (r *busRelay) Ask(kind, deviceID string) {
	select {
	case r.queue <- fanout.Notice{Kind: kind, DeviceID: deviceID}:
	default:
		r.log.Warn("scale-out notice dropped: queue full", "kind", kind, "device_id", deviceID)
	}
}

// send publishes the queued asks until ctx ends.
func (r *busRelay) send(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case n := <-r.queue:
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			if err := r.bus.Publish(pctx, n.Kind, n.DeviceID); err != nil && ctx.Err() == nil {
				r.log.Warn("scale-out notice not sent", "kind", n.Kind, "device_id", n.DeviceID, "err", err)
			}
			cancel()
		}
	}
}

// joinProcesses, on PostgreSQL, opens the bus, counts this process among
// those serving the database and marks every device offline only when it
// is the first one up (the others' devices are connected). On SQLite New
// has marked them offline already.
func (s *Server) joinProcesses(ctx context.Context) error {
	if s.Store.Dialect() != "postgres" {
		return nil
	}
	// The handshake's memory of certificates and devices is trusted only
	// while every other process's change to them is heard (store/ids.go).
	bus, err := fanout.Open(ctx, s.cfg.database, fanout.WithLogger(s.log),
		fanout.WithChannel(store.IdentityChannel, s.Store.Forget, s.Store.ShareIdentities))
	if err != nil {
		return err
	}
	s.bus = bus // closed with the stores
	if err := bus.Join(ctx, s.Store.ResetOnline); err != nil {
		return err
	}
	s.leases = bus
	s.relay = &busRelay{bus: bus, log: s.log, queue: make(chan fanout.Notice, relayQueue)}
	s.hub.SetRelay(s.relay)
	return nil
}

// origin is this process's id in the devices it marks online: the bus's
// origin on PostgreSQL, ” on SQLite (one process).
func (s *Server) origin() string {
	if s.bus == nil {
		return ""
	}
	return s.bus.Origin()
}

// reapOnline marks offline the devices of processes that are gone (a
// kill -9 ends no connection): the silent-while-unlocked sweep and the
// console then see them as they are. A process is taken for gone only
// when two rounds in a row do not list it, so that one whose lease
// session broke has till its next sweep to hold its lock again (Lease
// reopens the session). This process's own devices are never reaped.
func (s *Server) reapOnline(ctx context.Context) error {
	live, err := s.bus.Live(ctx)
	if err != nil {
		return err
	}
	if !slices.Contains(live, s.bus.Origin()) {
		// Its session broke since the lease was taken: the others may
		// take this process for gone until it holds its lock again.
		s.log.Warn("this process's liveness lock is not held", "origin", s.bus.Origin())
		live = append(live, s.bus.Origin())
	}
	last := s.lastLive
	s.lastLive = live
	if last == nil {
		return nil // the first round only looks
	}
	live = append(slices.Clone(live), last...)
	n, err := s.Store.ReapOnline(ctx, live)
	if n > 0 {
		s.log.Info("devices of stopped servers marked offline", "devices", n)
	}
	return err
}

// listenProcesses hears the other processes, and sends them what the hub
// asks, until ctx ends.
func (s *Server) listenProcesses(ctx context.Context) {
	defer s.wg.Done()
	sent := make(chan struct{})
	go func() { defer close(sent); s.relay.send(ctx) }()
	s.bus.Run(ctx, s.noticed, s.hub.Resync)
	<-sent // before Shutdown closes the bus
}

// noticed does what another process asked about a device held here.
//
// Hook point for the handshake cache (issue 18, "revocation and device
// state held in memory"): on gateway.AskRevoked, and on gateway.AskState
// when the cache holds device state, invalidate the device's entries
// here, before the hub looks, so that this process's next handshake of
// the device reads the database.
func (s *Server) noticed(ctx context.Context, n fanout.Notice) {
	s.hub.Asked(ctx, n.Kind, n.DeviceID)
}

// leaveProcesses marks every device offline at shutdown when this is the
// last process serving the database, and only then: the others hold
// their devices, and this one's reconnect to them.
func (s *Server) leaveProcesses(ctx context.Context) error {
	if s.bus == nil {
		return s.Store.ResetOnline(ctx)
	}
	alone, err := s.bus.Alone(ctx)
	if err != nil || !alone {
		return err
	}
	return s.Store.ResetOnline(ctx)
}

// once runs a timed job unless another process runs it now: with
// several processes each job holds its lease while it runs, so that an
// escalation, an expiry or an email happens once, not once per process.
// The one that finds the lease taken skips the round, which the holder
// is doing; each job reads what is due from the database, so the next
// holder does not redo what the last one committed.
func (s *Server) once(ctx context.Context, job string, fn func(context.Context) error) {
	release, ok, err := s.leases.Lease(ctx, job)
	if err != nil {
		s.log.Error("sweep lease", "job", job, "err", err)
		return
	}
	if !ok {
		return
	}
	defer release()
	if err := fn(ctx); err != nil {
		s.log.Error(job, "err", err)
	}
}
