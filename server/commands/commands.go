// Package commands is the remote-command queue: lock, wipe and Bluetooth
// block. A command is stored before anyone is told it exists, signed with
// the server's command key, pushed to the device if it is connected and
// otherwise when it next says hello, and moves on the agent's answer.
// Wipes are the LASO's alone, must name the device they erase, and are
// held for a second LASO when too many are issued at once. Devices that
// run no agent (Apple devices) get theirs through a Courier, under the
// same rules.
package commands

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/auth"
	"github.com/cordon-mdm/cordon/server/store"
)

// Audit actions this package records.
const (
	ActionRequested = "command.requested"
	ActionRefused   = "command.refused"
	ActionHeld      = "command.held"
	ActionApproved  = "command.approved"
	ActionDelivered = "command.delivered"
	ActionCompleted = "command.completed"
	ActionExpired   = "command.expired"
)

// Store is the persistence the queue needs, one small interface per
// concern. A command is created and approved in the transaction of its
// audit entry (Transactor), so those writes are not here.
type Store interface {
	DeviceReader
	CommandStore
	DeliveryStore
	Transactor
}

// DeviceReader reads the device a command is for.
type DeviceReader interface {
	GetDevice(ctx context.Context, id string) (*store.Device, error)
}

// CommandStore reads commands back, counts them for the wipe rate limit
// and expires them.
type CommandStore interface {
	GetCommand(ctx context.Context, id string) (*store.Command, error)
	CountCommandsSince(ctx context.Context, kind string, since time.Time) (int64, error)
	ExpireCommands(ctx context.Context, now time.Time) ([]store.Command, error)
	// UnfinishedCommands is the backlog the metrics read at scrape.
	UnfinishedCommands(ctx context.Context) ([]store.CommandBacklog, error)
}

// DeliveryStore is a device's side of the queue: what it may be sent, and
// what it answered.
type DeliveryStore interface {
	Deliverable(ctx context.Context, deviceID string, now time.Time) (deliver, expired []store.Command, err error)
	MarkDelivered(ctx context.Context, id string, at time.Time) error
	Complete(ctx context.Context, deviceID, id, status, result string, at time.Time) (*store.Command, bool, error)
}

// Transactor runs fn in one transaction: a command and its audit entry
// are stored together or not at all (AU-5).
type Transactor interface {
	InTx(ctx context.Context, fn func(tx *store.Store) error) error
}

// Pusher writes a frame to a device's live connection.
type Pusher interface {
	Send(deviceID string, frame []byte) bool
}

// Revoker revokes a device's certificates and disconnects it.
type Revoker interface {
	Revoke(ctx context.Context, deviceID, reason, actor, source string) error
}

// Auditor records security events; RecordTx appends within the
// caller's transaction.
type Auditor interface {
	Record(ctx context.Context, e audit.Entry) error
	RecordTx(ctx context.Context, tx audit.Appender, e audit.Entry) error
}

// Errors the API maps to statuses.
var (
	ErrForbidden = errors.New("forbidden")
	ErrInvalid   = errors.New("invalid command")
	ErrConfirm   = errors.New("confirm must repeat the device's id or name")
	ErrRevoked   = errors.New("device is revoked")
)

// Service is the queue.
type Service struct {
	store   Store
	audit   Auditor
	key     ed25519.PrivateKey
	push    Pusher
	revoke  Revoker
	log     *slog.Logger
	now     func() time.Time
	ttl     time.Duration
	wipeMax int
	window  time.Duration
	courier Courier // Carry
	// receiptRoots and certs verify wipe receipts (WithReceiptRoot).
	receiptRoots *x509.CertPool
	certs        CertificateReader
	metrics      *metrics // metrics.go
}

// Option configures a Service.
type Option func(*Service)

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(s *Service) { s.log = l } }

// WithTTL sets how long a command may wait for its device (default 24 h).
func WithTTL(d time.Duration) Option { return func(s *Service) { s.ttl = d } }

// WithWipeProtection holds every wipe beyond max issued within window
// until a second LASO approves it (default 3 in 10 minutes).
func WithWipeProtection(max int, window time.Duration) Option {
	return func(s *Service) { s.wipeMax, s.window = max, window }
}

// New returns a queue signing with key.
func New(st Store, auditor Auditor, key ed25519.PrivateKey, push Pusher, revoke Revoker, opts ...Option) *Service {
	s := &Service{store: st, audit: auditor, key: key, push: push, revoke: revoke, log: slog.New(slog.DiscardHandler),
		now: time.Now, ttl: 24 * time.Hour, wipeMax: 3, window: 10 * time.Minute, metrics: newMetrics()}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Request is a command as asked for through the API.
type Request struct {
	DeviceID string
	Kind     string
	Address  string // bluetooth_block
	Confirm  string // wipe: the device's id or name, repeated
	// Who asks, and from where.
	Actor, Role, Source string
}

// Issue validates, stores, audits and (when allowed) delivers a command.
func (s *Service) Issue(ctx context.Context, r Request) (*store.Command, error) {
	refuse := func(err error, reason string) (*store.Command, error) {
		s.record(ctx, r.Actor, r.Source, ActionRefused, "device:"+r.DeviceID, audit.Failure,
			map[string]string{"kind": r.Kind, "reason": reason})
		return nil, err
	}
	switch r.Kind {
	case protocol.CommandLock, protocol.CommandWipe:
	case protocol.CommandBluetoothBlock:
		addr, err := normalizeAddress(r.Address)
		if err != nil {
			return refuse(fmt.Errorf("%w: %v", ErrInvalid, err), err.Error())
		}
		r.Address = addr
	default:
		return refuse(fmt.Errorf("%w: kind must be lock, wipe or bluetooth_block", ErrInvalid), "unknown kind")
	}
	if r.Kind == protocol.CommandWipe && r.Role != auth.RoleLASO {
		return refuse(fmt.Errorf("%w: only the laso role may wipe", ErrForbidden), "role "+r.Role+" may not wipe")
	}
	dev, err := s.store.GetDevice(ctx, r.DeviceID)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return refuse(err, "no such device")
		}
		return nil, err
	}
	if dev.Status == "revoked" {
		return refuse(ErrRevoked, "device is revoked")
	}
	if r.Kind == protocol.CommandBluetoothBlock && s.carried(dev) {
		// Apple's MDM has no such command: Bluetooth on an Apple device is
		// restricted by a configuration profile, not blocked per peer.
		return refuse(fmt.Errorf("%w: %s devices have no bluetooth_block; restrict Bluetooth with a profile", ErrInvalid, dev.Platform),
			"no bluetooth_block on "+dev.Platform)
	}
	if r.Kind == protocol.CommandWipe && r.Confirm != dev.ID && (dev.Name == "" || r.Confirm != dev.Name) {
		return refuse(ErrConfirm, "confirm did not name the device")
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	status := store.CommandQueued
	if r.Kind == protocol.CommandWipe {
		n, err := s.store.CountCommandsSince(ctx, protocol.CommandWipe, now.Add(-s.window))
		if err != nil {
			return nil, err
		}
		if n >= int64(s.wipeMax) {
			status = store.CommandHeld
		}
	}
	c := protocol.Command{ID: uuid.NewString(), DeviceID: dev.ID, Kind: r.Kind, Address: r.Address,
		IssuedAt: now, NotAfter: now.Add(s.ttl)}
	rec := &store.Command{ID: c.ID, DeviceID: dev.ID, Kind: c.Kind, Address: c.Address, Issuer: r.Actor,
		IssuerRole: r.Role, Source: r.Source, CreatedAt: now, NotAfter: c.NotAfter, Status: status}
	details := map[string]string{"command": c.ID, "kind": c.Kind, "status": status}
	if c.Address != "" {
		details["address"] = c.Address
	}
	var held func(*store.Store) error
	if status == store.CommandHeld {
		held = func(tx *store.Store) error {
			return s.audit.RecordTx(ctx, tx, audit.Entry{Actor: "server", Source: "local", Action: ActionHeld,
				Target: "command:" + c.ID, Outcome: audit.Success, Details: map[string]string{"device": dev.ID,
					"reason": fmt.Sprintf("more than %d wipes within %v; a second LASO must approve", s.wipeMax, s.window)}})
		}
	}
	return s.enqueue(ctx, dev, c, rec, details, held)
}

// enqueue signs c for dev into rec's frame and stores rec with its
// command.requested entry (details) and then, in the same transaction,
// what also (when set) writes: a command nobody can find in the trail is
// never queued (AU-5). A queued command goes to the device at once when
// it is connected; a held one waits for its approval.
func (s *Service) enqueue(ctx context.Context, dev *store.Device, c protocol.Command, rec *store.Command,
	details map[string]string, also func(*store.Store) error) (*store.Command, error) {
	frame, err := s.render(dev, c, rec.CreatedAt)
	if err != nil {
		return nil, err
	}
	rec.Frame = frame
	err = s.store.InTx(ctx, func(tx *store.Store) error {
		if err := tx.CreateCommand(ctx, rec); err != nil {
			return err
		}
		if err := s.audit.RecordTx(ctx, tx, audit.Entry{Actor: rec.Issuer, Source: rec.Source, Action: ActionRequested,
			Target: "device:" + dev.ID, Outcome: audit.Success, Details: details}); err != nil {
			return err
		}
		if also == nil {
			return nil
		}
		return also(tx)
	})
	if err != nil {
		return nil, err
	}
	s.metrics.issued.WithLabelValues(rec.Kind).Inc()
	if rec.Status == store.CommandHeld {
		return rec, nil
	}
	s.deliver(ctx, rec, dev)
	return s.store.GetCommand(ctx, rec.ID)
}

// Lock queues a remote lock on behalf of an incident's playbook.
func (s *Service) Lock(ctx context.Context, deviceID, reason string) (string, error) {
	c, err := s.Issue(ctx, Request{DeviceID: deviceID, Kind: protocol.CommandLock, Actor: "playbook (" + reason + ")",
		Role: auth.RoleLASO, Source: "local"})
	if err != nil {
		return "", err
	}
	return c.ID, nil
}

// BluetoothBlock queues a bluetooth_block for compliance enforcement: an
// unapproved peer is blocked at once.
func (s *Service) BluetoothBlock(ctx context.Context, deviceID, address, reason string) (string, error) {
	c, err := s.Issue(ctx, Request{DeviceID: deviceID, Kind: protocol.CommandBluetoothBlock, Address: address,
		Actor: "compliance (" + reason + ")", Role: auth.RoleITAdmin, Source: "local"})
	if err != nil {
		return "", err
	}
	return c.ID, nil
}

// Approve releases a held wipe. The approver must be a LASO other than
// the one who issued it.
func (s *Service) Approve(ctx context.Context, id, actor, role, source string) (*store.Command, error) {
	c, err := s.store.GetCommand(ctx, id)
	if err != nil {
		return nil, err
	}
	refuse := func(err error, reason string) (*store.Command, error) {
		s.record(ctx, actor, source, ActionApproved, "command:"+id, audit.Failure, map[string]string{"reason": reason})
		return nil, err
	}
	if role != auth.RoleLASO {
		return refuse(ErrForbidden, "role "+role+" may not approve")
	}
	if actor == c.Issuer {
		return refuse(fmt.Errorf("%w: the issuing LASO cannot approve their own wipe", ErrForbidden), "approver is the issuer")
	}
	err = s.store.InTx(ctx, func(tx *store.Store) error {
		var err error
		if c, err = tx.Approve(ctx, id, actor); err != nil {
			return err
		}
		return s.audit.RecordTx(ctx, tx, audit.Entry{Actor: actor, Source: source, Action: ActionApproved, Target: "command:" + id,
			Outcome: audit.Success, Details: map[string]string{"device": c.DeviceID, "issuer": c.Issuer}})
	})
	if err != nil {
		if errors.Is(err, store.ErrConflict) {
			return refuse(err, "command is not held")
		}
		return nil, err
	}
	s.deliver(ctx, c, nil)
	return s.store.GetCommand(ctx, id)
}

// Ready delivers the device's pending commands; the gateway calls it when
// the device connects.
func (s *Service) Ready(ctx context.Context, deviceID string) {
	cs, expired, err := s.store.Deliverable(ctx, deviceID, s.now().UTC())
	if err != nil {
		s.log.Error("pending commands", "device_id", deviceID, "err", err)
		return
	}
	s.expired(ctx, expired)
	for i := range cs {
		s.deliver(ctx, &cs[i], nil)
	}
}

// Result stores an agent's answer. A wipe that is done revokes the
// device, so a wiped device (or whoever holds its disk) cannot reconnect;
// the revocation is returned as after, for the gateway to run once the
// agent has its acknowledgement.
func (s *Service) Result(ctx context.Context, deviceID, remote string, r protocol.CommandResult) (func(), error) {
	now := s.now().UTC().Truncate(time.Microsecond)
	// A receipt is kept beside the command (wipe_receipts), not in its
	// result.
	var receiptRow *store.WipeReceipt
	if r.Receipt != nil {
		var err error
		if receiptRow, err = s.judgeReceipt(ctx, deviceID, r.Ref, r.Receipt, now); err != nil {
			return nil, err
		}
		r.Receipt = nil
	}
	body, _ := json.Marshal(r)
	status := store.CommandFailed
	if r.Status == protocol.ResultDone {
		status = store.CommandDone
	}
	outcome := audit.Success
	if status != store.CommandDone {
		outcome = audit.Failure
	}
	// The result and its entry commit together (AU-5): an agent whose
	// answer is not acknowledged sends it again, so nothing is lost by
	// refusing it when the trail cannot take its entry.
	var c *store.Command
	changed := false
	err := s.store.InTx(ctx, func(tx *store.Store) error {
		var err error
		c, changed, err = tx.Complete(ctx, deviceID, r.Ref, status, string(body), now)
		if err != nil || !changed {
			return err
		}
		if receiptRow != nil && c.Kind == protocol.CommandWipe {
			if err := s.storeReceipt(ctx, tx, remote, receiptRow); err != nil {
				return err
			}
		}
		details := map[string]string{"command": c.ID, "kind": c.Kind, "status": status}
		if r.Message != "" {
			details["message"] = r.Message
		}
		for k, v := range r.Detail {
			details["agent."+k] = v
		}
		return s.audit.RecordTx(ctx, tx, audit.Entry{Actor: "device:" + deviceID, Source: remote, Action: ActionCompleted,
			Target: "device:" + deviceID, Outcome: outcome, Details: details})
	})
	if err != nil {
		return nil, err
	}
	if !changed {
		return s.late(ctx, deviceID, remote, c, status)
	}
	s.metrics.ended(c, status, now)
	if c.Kind == protocol.CommandWipe && status == store.CommandDone {
		return func() {
			if err := s.revoke.Revoke(ctx, deviceID, "wiped by command "+c.ID, c.Issuer, "local"); err != nil {
				s.log.Error("revoke wiped device", "device_id", deviceID, "err", err)
			}
		}, nil
	}
	return nil, nil
}

// Expire ends every command whose device did not answer before its
// not-after, each with an audit entry; the server calls it every minute.
func (s *Service) Expire(ctx context.Context) {
	cs, err := s.store.ExpireCommands(ctx, s.now().UTC().Truncate(time.Microsecond))
	if err != nil {
		s.log.Error("expire commands", "err", err)
		return
	}
	s.expired(ctx, cs)
}

// expired records the end of commands the store expired (cs as they
// were before): the sweep's, and those a device's redelivery found past
// their not-after.
func (s *Service) expired(ctx context.Context, cs []store.Command) {
	for i := range cs {
		c := &cs[i]
		s.metrics.ended(c, store.CommandExpired, time.Time{})
		s.record(ctx, "server", "local", ActionExpired, "device:"+c.DeviceID, audit.Failure,
			map[string]string{"command": c.ID, "kind": c.Kind, "was": c.Status})
	}
}

func (s *Service) record(ctx context.Context, actor, source, action, target, outcome string, details map[string]string) {
	s.audit.Record(ctx, audit.Entry{Actor: actor, Source: source, Action: action, Target: target, Outcome: outcome, Details: details})
}

// normalizeAddress accepts a Bluetooth address with ':' or '-' separators
// in either case and returns AA:BB:CC:DD:EE:FF.
func normalizeAddress(a string) (string, error) {
	a = strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(a), "-", ":"))
	parts := strings.Split(a, ":")
	if len(parts) != 6 {
		return "", errors.New("address must be six hex octets, AA:BB:CC:DD:EE:FF")
	}
	for _, p := range parts {
		if len(p) != 2 || strings.Trim(p, "0123456789ABCDEF") != "" {
			return "", errors.New("address must be six hex octets, AA:BB:CC:DD:EE:FF")
		}
	}
	return a, nil
}
