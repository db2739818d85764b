package applemdm

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"

	"github.com/cordon-mdm/cordon/internal/input"
	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/server/store"
)

// Results is where the answers to Cordon's queued commands go, as an
// agent's would (*commands.Service). A wipe that is done returns the
// device's revocation as after.
type Results interface {
	Result(ctx context.Context, deviceID, remote string, r protocol.CommandResult) (after func(), err error)
}

// DefaultLockMessage is what a locked iPhone, iPad or Mac shows unless
// the agency sets its own (WithLockNotice).
const DefaultLockMessage = "This device belongs to a law enforcement agency and has been locked. Please return it."

// Courier carries the command queue's lock and wipe to Apple devices:
// lock is DeviceLock (a message, a phone number, and on a Mac a 6-digit
// PIN), wipe is EraseDevice (a PIN on a Mac). Apple's answer completes
// the queued command: Acknowledged is done, Error is failed with Apple's
// error chain. NotNow never reaches it: nanomdm sends the command again.
type Courier struct {
	mdm     *MDM
	results Results
	log     *slog.Logger
	message string
	phone   string
}

// CourierOption configures NewCourier.
type CourierOption func(*Courier)

// WithLockNotice sets what a locked device shows: message (default
// DefaultLockMessage) and a phone number to call ("" shows none).
func WithLockNotice(message, phone string) CourierOption {
	return func(c *Courier) {
		if message != "" {
			c.message = message
		}
		c.phone = phone
	}
}

// NewCourier returns the courier for m's devices and routes their
// answers to DeviceLock and EraseDevice to results. It is wiring, done
// before the server serves.
func NewCourier(m *MDM, results Results, opts ...CourierOption) *Courier {
	c := &Courier{mdm: m, results: results, log: m.log, message: DefaultLockMessage}
	for _, o := range opts {
		o(c)
	}
	m.Handle(requestLock, c.answer)
	m.Handle(requestErase, c.answer)
	return c
}

const (
	requestLock  = "DeviceLock"
	requestErase = "EraseDevice"
)

// frame is a queued command as the courier carries it, stored as the
// command's frame: Apple's request type and its keys, PIN among them.
type frame struct {
	RequestType string            `json:"request_type"`
	Payload     map[string]string `json:"payload,omitempty"`
}

// Carries reports whether devices on platform speak Apple MDM.
func (c *Courier) Carries(platform string) bool {
	switch platform {
	case "ios", "ipados", "macos":
		return true
	}
	return false
}

// Render is cmd in Apple's terms. A Mac gets a fresh 6-digit PIN: macOS
// requires one for DeviceLock and, on a Mac without Apple silicon or T2,
// for EraseDevice; it is what unlocks the Mac afterwards.
func (c *Courier) Render(cmd protocol.Command, platform string) ([]byte, error) {
	f := frame{Payload: map[string]string{}}
	switch cmd.Kind {
	case protocol.CommandLock:
		f.RequestType = requestLock
		f.Payload["Message"] = c.message
		if c.phone != "" {
			f.Payload["PhoneNumber"] = c.phone
		}
	case protocol.CommandWipe:
		f.RequestType = requestErase
	default:
		return nil, fmt.Errorf("apple mdm has no %s command", cmd.Kind)
	}
	if platform == "macos" {
		pin, err := newPIN()
		if err != nil {
			return nil, err
		}
		f.Payload["PIN"] = pin
	}
	return json.Marshal(f)
}

// Deliver queues the command in nanomdm's durable queue and pushes.
func (c *Courier) Deliver(ctx context.Context, cmd *store.Command) error {
	var f frame
	if err := json.Unmarshal(cmd.Frame, &f); err != nil || f.RequestType == "" {
		return fmt.Errorf("command %s: not an Apple MDM frame: %v", cmd.ID, err)
	}
	payload := make(map[string]any, len(f.Payload))
	for k, v := range f.Payload {
		payload[k] = v
	}
	return c.mdm.Send(ctx, cmd.DeviceID, Command{RequestType: f.RequestType, Ref: cmd.ID, Payload: payload})
}

// Secret is the Mac's PIN the frame carries, "" for an iPhone or iPad.
func (c *Courier) Secret(raw []byte) string {
	var f frame
	if json.Unmarshal(raw, &f) != nil || f.RequestType == "" {
		return "" // not a courier's frame: an agent's
	}
	return f.Payload["PIN"]
}

// answer completes the queued command a DeviceLock or EraseDevice
// answer is for. Results is idempotent, as a device may send the same
// answer again; an answer to no queued command (its ref unknown) is
// logged and dropped, since refusing it would make the device resend it
// forever.
func (c *Courier) answer(ctx context.Context, a Answer) error {
	r := protocol.CommandResult{Ref: a.Ref, Status: protocol.ResultDone,
		Detail: map[string]string{"request_type": a.RequestType, "apple_status": a.Status}}
	if a.Status != StatusAcknowledged {
		r.Status, r.Message = protocol.ResultFailed, input.Clip(a.Error(), 1024)
	}
	after, err := c.results.Result(ctx, a.DeviceID, a.Remote, r)
	if errors.Is(err, store.ErrNotFound) {
		c.log.Warn("apple mdm answer to no queued command", "device_id", a.DeviceID,
			"request_type", a.RequestType, "ref", input.Clip(a.Ref, 64), "status", a.Status)
		return nil
	}
	if err != nil {
		return err
	}
	if after != nil {
		// A wiped device is revoked now: nothing will come back to
		// acknowledge, and its identity must not check in again.
		after()
	}
	return nil
}

// newPIN is six random decimal digits.
func newPIN() (string, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		return "", fmt.Errorf("mac pin: %w", err)
	}
	return fmt.Sprintf("%06d", n.Int64()), nil
}
