package protocol

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cordon-mdm/cordon/internal/input"
)

// Command frames: the server sends a signed command, the agent answers
// with a result, which the server acknowledges like a report.
const (
	TypeCommand       = "command"
	TypeCommandResult = "command_result"
)

// Command kinds.
const (
	CommandLock           = "lock"
	CommandWipe           = "wipe"
	CommandBluetoothBlock = "bluetooth_block"
)

// Command result statuses an agent reports.
const (
	ResultDone   = "done"
	ResultFailed = "failed"
)

// Command is what the server signs. The agent checks every field before
// acting: DeviceID against its own, NotAfter against its clock, ID
// against the commands it has already run.
type Command struct {
	ID       string `json:"id"`
	DeviceID string `json:"device_id"`
	Kind     string `json:"kind"`
	Address  string `json:"address,omitempty"` // bluetooth_block: the peer
	// Update is an update command's release (capability version 12).
	Update   *UpdateParams `json:"update,omitempty"`
	IssuedAt time.Time     `json:"issued_at"`
	NotAfter time.Time     `json:"not_after"`
}

// commandDomain separates command signatures from anything else the key
// could ever sign.
const commandDomain = "cordon/command/v1\x00"

// SignedCommand is a command frame's body: the exact bytes that were
// signed and the Ed25519 signature over them.
type SignedCommand struct {
	Payload   []byte `json:"payload"`
	Signature []byte `json:"signature"`
}

// Errors from OpenCommand, each a reason a command is refused.
var (
	ErrBadSignature = errors.New("command signature does not verify with the enrolled command key")
	ErrBadCommand   = errors.New("malformed command")
)

// SignCommand signs c with the server's command key.
func SignCommand(key ed25519.PrivateKey, c Command) (SignedCommand, error) {
	payload, err := json.Marshal(c)
	if err != nil {
		return SignedCommand{}, err
	}
	return SignedCommand{Payload: payload, Signature: ed25519.Sign(key, append([]byte(commandDomain), payload...))}, nil
}

// OpenCommand verifies the signature and decodes the command. It does not
// judge the command (device, expiry, replay): the agent does.
func OpenCommand(pub ed25519.PublicKey, s SignedCommand) (Command, error) {
	if len(pub) != ed25519.PublicKeySize {
		return Command{}, errors.New("no command key enrolled")
	}
	if len(s.Signature) != ed25519.SignatureSize || !ed25519.Verify(pub, append([]byte(commandDomain), s.Payload...), s.Signature) {
		return Command{}, ErrBadSignature
	}
	var c Command
	dec := json.NewDecoder(bytes.NewReader(s.Payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Command{}, fmt.Errorf("%w: %v", ErrBadCommand, err)
	}
	if err := c.Check(); err != nil {
		return Command{}, err
	}
	return c, nil
}

// Check validates a command's shape.
func (c Command) Check() error {
	if c.ID == "" || c.DeviceID == "" || c.NotAfter.IsZero() {
		return fmt.Errorf("%w: id, device_id and not_after are required", ErrBadCommand)
	}
	switch c.Kind {
	case CommandLock, CommandWipe:
	case CommandUpdate:
		if err := c.Update.Check(); err != nil {
			return err
		}
	case CommandBluetoothBlock:
		if c.Address == "" {
			return fmt.Errorf("%w: bluetooth_block needs an address", ErrBadCommand)
		}
	default:
		return fmt.Errorf("%w: unknown kind %q", ErrBadCommand, c.Kind)
	}
	if c.Update != nil && c.Kind != CommandUpdate {
		return fmt.Errorf("%w: update params on a %s command", ErrBadCommand, c.Kind)
	}
	return checkLens(map[string]string{"id": c.ID, "device_id": c.DeviceID, "address": c.Address}, 64)
}

// CommandResult is the agent's answer to a command.
type CommandResult struct {
	Ref     string            `json:"ref"`    // the command's id
	Status  string            `json:"status"` // ResultDone or ResultFailed
	Message string            `json:"message,omitempty"`
	Detail  map[string]string `json:"detail,omitempty"` // what was erased, the lock state seen, ...
	// Receipt is a wipe's signed account of what it erased (capability
	// version 10); the server verifies it against the device's chain.
	Receipt *WipeReceipt `json:"receipt,omitempty"`
}

// Check validates a result.
func (r *CommandResult) Check() error {
	if r.Ref == "" {
		return errors.New("ref is required")
	}
	if r.Status != ResultDone && r.Status != ResultFailed {
		return errors.New("status must be done or failed")
	}
	if len(r.Detail) > 64 {
		return errors.New("detail: more than 64 entries")
	}
	fields := map[string]string{"ref": r.Ref, "message": r.Message}
	for k, v := range r.Detail {
		if err := input.Text("detail key", k, 64); err != nil {
			return err
		}
		fields["detail."+k] = v
	}
	if r.Receipt != nil {
		if err := r.Receipt.Check(); err != nil {
			return err
		}
		if r.Receipt.CommandID != r.Ref {
			return fmt.Errorf("%w: receipt for command %s in the answer to %s", ErrBadReceipt, r.Receipt.CommandID, r.Ref)
		}
	}
	return checkLens(fields, 4096)
}
