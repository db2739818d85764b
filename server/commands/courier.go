package commands

import (
	"context"
	"fmt"
	"time"

	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/store"
)

// Courier carries commands to devices that run no Cordon agent: Apple
// devices, through Apple MDM (*applemdm.Courier). The queue keeps its
// rules, its audit trail and its expiry for them; the courier renders a
// command in its device's terms and carries it, and its answers come back
// through Result like an agent's.
type Courier interface {
	// Carries reports whether devices on platform are the courier's.
	Carries(platform string) bool
	// Render is c as the courier will carry it to a device on platform,
	// stored as the command's frame in the transaction that creates it:
	// what the device gets, and any secret in it (a Mac's PIN), is durable
	// before anything is sent.
	Render(c protocol.Command, platform string) ([]byte, error)
	// Deliver hands the command's frame to the device's own durable
	// queue; once it returns nil the device gets it without the queue's
	// help, and the command is delivered.
	Deliver(ctx context.Context, c *store.Command) error
	// Secret is the secret a frame holds for whoever must undo the
	// command (a Mac's lock PIN), "" when none.
	Secret(frame []byte) string
}

// Carry routes the commands of the courier's devices to it. It is
// wiring, done before the server serves: the courier's answers come back
// through this queue's Result, so the courier is built after the queue.
func (s *Service) Carry(c Courier) { s.courier = c }

// Secret is the secret the command carries for whoever must undo it (a
// Mac's lock PIN), "" when none. The API shows it to the LASO only; it
// is never logged nor audited.
func (s *Service) Secret(c *store.Command) string {
	if s.courier == nil || len(c.Frame) == 0 {
		return ""
	}
	return s.courier.Secret(c.Frame)
}

// carried reports whether the courier, not the hub, delivers to dev.
func (s *Service) carried(dev *store.Device) bool {
	return s.courier != nil && s.courier.Carries(dev.Platform)
}

// render is the frame of c for dev: the courier's for its devices, the
// signed agent frame for the rest.
func (s *Service) render(dev *store.Device, c protocol.Command, now time.Time) ([]byte, error) {
	if s.carried(dev) {
		f, err := s.courier.Render(c, dev.Platform)
		if err != nil {
			return nil, fmt.Errorf("%s for %s: %w", c.Kind, dev.Platform, err)
		}
		return f, nil
	}
	signed, err := protocol.SignCommand(s.key, c)
	if err != nil {
		return nil, err
	}
	return protocol.Encode(protocol.TypeCommand, c.ID, now, signed)
}

// deliver sends c to its device: through the courier for the courier's
// devices, over the hub to a connected agent otherwise. dev is nil when
// the caller has not read the device.
func (s *Service) deliver(ctx context.Context, c *store.Command, dev *store.Device) {
	if s.courier != nil && dev == nil {
		var err error
		if dev, err = s.store.GetDevice(ctx, c.DeviceID); err != nil {
			s.log.Error("deliver: read device", "command", c.ID, "device_id", c.DeviceID, "err", err)
			return
		}
	}
	if dev != nil && s.carried(dev) {
		if err := s.courier.Deliver(ctx, c); err != nil {
			// The command stays queued; it expires at its not-after
			// unless it is approved or sent again.
			s.log.Error("deliver through the courier", "command", c.ID, "device_id", c.DeviceID, "err", err)
			return
		}
	} else if !s.push.Send(c.DeviceID, c.Frame) {
		return // offline: Ready sends it when the device connects
	}
	if err := s.store.MarkDelivered(ctx, c.ID, s.now().UTC().Truncate(time.Microsecond)); err != nil {
		s.log.Error("mark delivered", "command", c.ID, "err", err)
	}
	s.record(ctx, "server", "local", ActionDelivered, "device:"+c.DeviceID, audit.Success,
		map[string]string{"command": c.ID, "kind": c.Kind})
}

// late handles an answer to a command that was no longer waiting for
// one. An agent refuses an expired command, so only a courier's device
// answers after the expiry: nanomdm cannot withdraw one queued command,
// and the device may fetch it later. A wipe it reports done has erased
// the device all the same, which is then revoked, with an entry saying
// so; once revoked, a repeated answer changes nothing.
func (s *Service) late(ctx context.Context, deviceID, remote string, c *store.Command, status string) (func(), error) {
	if c.Kind != protocol.CommandWipe || c.Status != store.CommandExpired || status != store.CommandDone {
		return nil, nil
	}
	dev, err := s.store.GetDevice(ctx, deviceID)
	if err != nil || dev.Status == store.StatusRevoked {
		return nil, err
	}
	if err := s.audit.Record(ctx, audit.Entry{Actor: "device:" + deviceID, Source: remote, Action: ActionCompleted,
		Target: "device:" + deviceID, Outcome: audit.Success,
		Details: map[string]string{"command": c.ID, "kind": c.Kind, "status": status, "after": store.CommandExpired}}); err != nil {
		return nil, err
	}
	return func() {
		if err := s.revoke.Revoke(ctx, deviceID, "wiped by command "+c.ID+" after its expiry", c.Issuer, "local"); err != nil {
			s.log.Error("revoke wiped device", "device_id", deviceID, "err", err)
		}
	}, nil
}
