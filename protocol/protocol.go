// Package protocol holds every type that crosses the wire between the
// Cordon agent and the Cordon server. It is Cordon's equivalent of
// Tailscale's tailcfg: wire types only, no I/O, and it imports nothing
// beyond the standard library and the leaf internal/input (the one
// validation path every edge shares) so that both binaries can share it
// without dragging each other's dependencies along (a test enforces this).
package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
	"unicode/utf8"

	"github.com/cordon-mdm/cordon/internal/input"
)

// Version is the version of the agent↔server envelope. Bump it only when
// a change is not backward compatible; every compatible wire addition
// bumps CurrentCapabilityVersion instead, and its log (capver.go) says
// what each version added.
const Version = 1

// MaxClockSkew is how far ahead of the server's clock a time a device
// sends may be and still be taken as it is: a device clock more than
// this ahead (or a time before the device's enrollment) is not trusted,
// and the server keeps its own receive time instead. Five minutes is
// Kerberos' customary tolerance, wide enough for clocks that drift
// between NTP syncs and narrow enough that no one can date an event
// meaningfully into the future. Both edges use it: the agent channel
// (posture times, incident times) and the API (an incident's ended_at):
// INTERFACE.md, input rules. Defined once, here.
const MaxClockSkew = 5 * time.Minute

// MaxFrameBytes is the largest frame either side accepts. The gateway
// closes a connection that sends more with close code 1009.
const MaxFrameBytes = 1 << 20

// Message types.
const (
	TypeHello   = "hello"   // agent → server, first frame after connect
	TypePosture = "posture" // agent → server
	TypeAck     = "ack"     // server → agent: the referenced frame is committed
	TypeError   = "error"   // either way: the referenced frame was refused
	TypeRenew   = "renew"   // agent → server: CSR for a fresh certificate
	TypeRenewed = "renewed" // server → agent: the new certificate
)

// knownTypes lists what this version understands; anything else is refused
// with an error frame so old and new peers fail loudly, not silently.
var knownTypes = map[string]bool{
	TypeHello: true, TypePosture: true, TypeAck: true,
	TypeError: true, TypeRenew: true, TypeRenewed: true,
	TypeCommand: true, TypeCommandResult: true,
	TypeIncidentReport: true, TypeDeviceState: true, TypeBluetoothRequest: true,
	TypeReconnectHint: true,
}

// Envelope wraps every frame.
type Envelope struct {
	V    int             `json:"v"`
	Type string          `json:"type"`
	ID   string          `json:"id"`
	TS   time.Time       `json:"ts"`
	Body json.RawMessage `json:"body,omitempty"`
}

// Errors returned by Decode. They are sentinel values so the gateway and
// agent can tell a peer precisely what was wrong.
var (
	ErrMalformed   = errors.New("malformed frame")
	ErrVersion     = errors.New("unsupported protocol version")
	ErrUnknownType = errors.New("unknown message type")
	ErrTooLarge    = errors.New("frame too large")
)

// Decode parses one frame. It never panics on hostile input; the returned
// Envelope is only meaningful when err is nil, except that ID is filled in
// whenever it could be read so that the error frame can reference it.
func Decode(data []byte) (Envelope, error) {
	var env Envelope
	if len(data) > MaxFrameBytes {
		return env, ErrTooLarge
	}
	// encoding/json would replace invalid UTF-8 with U+FFFD unseen.
	if !utf8.Valid(data) {
		return Envelope{}, fmt.Errorf("%w: frame is not valid UTF-8", ErrMalformed)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&env); err != nil {
		return Envelope{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	// Token, not More: More says false for a stray "}" or "]".
	if _, err := dec.Token(); err != io.EOF {
		return Envelope{ID: env.ID}, fmt.Errorf("%w: trailing data after frame", ErrMalformed)
	}
	if env.V != Version {
		return Envelope{ID: env.ID}, fmt.Errorf("%w: got %d, this peer speaks %d", ErrVersion, env.V, Version)
	}
	if !knownTypes[env.Type] {
		return Envelope{ID: env.ID}, fmt.Errorf("%w: %q", ErrUnknownType, env.Type)
	}
	if env.ID == "" || input.Text("id", env.ID, 64) != nil {
		return Envelope{}, fmt.Errorf("%w: id must be 1 to 64 characters without control characters", ErrMalformed)
	}
	return env, nil
}

// DecodeBody unmarshals the body of env into v through input.Unmarshal,
// the path the REST API uses too: one document, unknown fields refused
// (a typo on either side is an error rather than a silent default),
// valid UTF-8, then v's Check. The error is both ErrMalformed and
// input.ErrInvalid.
func DecodeBody(env Envelope, v any) error {
	if len(env.Body) == 0 {
		return fmt.Errorf("%w: %s frame without body", ErrMalformed, env.Type)
	}
	if err := input.Unmarshal(env.Body, v); err != nil {
		return fmt.Errorf("%w: %s body: %w", ErrMalformed, env.Type, err)
	}
	return nil
}

// Encode builds a frame of the given type with body v.
func Encode(typ, id string, ts time.Time, v any) ([]byte, error) {
	var body json.RawMessage
	if v != nil {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		body = b
	}
	return json.Marshal(Envelope{V: Version, Type: typ, ID: id, TS: ts.UTC(), Body: body})
}

// Hello is the first frame an agent sends after connecting.
type Hello struct {
	AgentVersion string   `json:"agent_version"`
	Platform     string   `json:"platform"` // GOOS/GOARCH
	Hostname     string   `json:"hostname"`
	Capabilities []string `json:"capabilities,omitempty"`
	// CapabilityVersion is what the agent speaks (capver.go); 0 from an
	// agent older than the field.
	CapabilityVersion CapabilityVersion `json:"capability_version,omitempty"`
}

// Check validates a Hello.
func (h *Hello) Check() error {
	if h.Platform == "" {
		return errors.New("platform is required")
	}
	// A device's announcement is untrusted: bounded, so that what the
	// server records about it stays small.
	if h.CapabilityVersion < 0 || h.CapabilityVersion > maxCapabilityVersion {
		return fmt.Errorf("capability_version %d is out of range", h.CapabilityVersion)
	}
	if len(h.Capabilities) > maxCapabilities {
		return fmt.Errorf("more than %d capabilities", maxCapabilities)
	}
	for _, c := range h.Capabilities {
		if err := input.Name("capabilities", c); err != nil {
			return err
		}
	}
	return checkLens(map[string]string{"agent_version": h.AgentVersion, "platform": h.Platform, "hostname": h.Hostname}, 256)
}

// Bounds on what a hello may announce.
const (
	maxCapabilityVersion = 1 << 16
	maxCapabilities      = 32
)

// Ack tells the agent that the frame Ref was committed durably.
type Ack struct {
	Ref string `json:"ref"`
	// Incident is the incident an incident_report opened.
	Incident string `json:"incident,omitempty"`
	// Request is the request a bluetooth_request filed.
	Request string `json:"request,omitempty"`
}

// Error tells the peer that frame Ref was refused and why.
type Error struct {
	Ref     string `json:"ref,omitempty"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error codes carried in Error.Code.
const (
	CodeMalformed   = "malformed"
	CodeVersion     = "unsupported_version"
	CodeUnknownType = "unknown_type"
	CodeInternal    = "internal"
	CodeRefused     = "refused"
)

// CodeFor maps a Decode error to the code sent back to the peer.
func CodeFor(err error) string {
	switch {
	case errors.Is(err, ErrVersion):
		return CodeVersion
	case errors.Is(err, ErrUnknownType):
		return CodeUnknownType
	case errors.Is(err, ErrMalformed), errors.Is(err, ErrTooLarge):
		return CodeMalformed
	}
	return CodeInternal
}

// Renew carries a PEM CSR signed by the device's current key.
type Renew struct {
	CSR string `json:"csr"`
}

// Check validates a Renew.
func (r *Renew) Check() error {
	if r.CSR == "" {
		return errors.New("csr is required")
	}
	return nil
}

// Renewed carries the device's new certificate (PEM, leaf first).
type Renewed struct {
	Ref         string `json:"ref"`
	Certificate string `json:"certificate"`
}

// Close codes the gateway uses beyond RFC 6455's.
const (
	// CloseReplaced: a newer connection from the same device took over.
	CloseReplaced = 4001
	// CloseRevoked: the device's certificate was revoked while connected.
	CloseRevoked = 4003
)

// checkLens holds one-line text fields to the input rules: valid UTF-8,
// no control characters, at most max bytes.
func checkLens(fields map[string]string, max int) error {
	return input.Texts(fields, max)
}

// checkFreeLens is checkLens for text that may span lines (a collector's
// diagnostic output): newline and tab are allowed.
func checkFreeLens(fields map[string]string, max int) error {
	return input.FreeTexts(fields, max)
}
