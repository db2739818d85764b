package protocol

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// CapWipeReceipts is announced by agents whose wipe answer carries a
// WipeReceipt (capability version 10).
const CapWipeReceipts = "wipe_receipts"

// ReceiptFormat names the receipt's layout; a verifier refuses any other.
const ReceiptFormat = "cordon-wipe-receipt/v1"

// ReceiptClock labels every time in a receipt: each was read from the
// device's own clock, which the server does not vouch for.
const ReceiptClock = "device"

// ReceiptAlgorithm is the one signature a receipt carries: ECDSA over
// P-256 with SHA-256, the signature ASN.1 DER (what a crypto.Signer for
// an ECDSA key, file or TPM, returns).
const ReceiptAlgorithm = "ECDSA-P256-SHA256"

// Bounds on a receipt: a device has a few volumes and its wipe policy a
// bounded list of CJI paths; the whole stays well inside one frame.
const (
	maxReceiptVolumes = 32
	maxReceiptPaths   = 256
	maxReceiptChain   = 4
	maxReceiptCert    = 8 << 10
	maxReceiptSig     = 128
	// MaxReceiptBytes bounds a receipt's encoding (and a receipt file).
	MaxReceiptBytes = 512 << 10
)

// WipeReceipt is what a device says, under its identity key and before
// destroying it, about a wipe it ran. The signature is over Canonical
// with Signature empty, so it is the last member of the encoding: the
// signed bytes are the receipt's bytes with `,"signature":"..."` taken
// out. Times are the device's clock (Clock says so).
type WipeReceipt struct {
	Format    string `json:"format"`
	DeviceID  string `json:"device_id"`
	CommandID string `json:"command_id"`
	// Complete is the wipe's own verdict: done (every LUKS volume erased
	// and verified, every CJI deletion succeeded) or partial.
	Complete bool   `json:"complete"`
	Clock    string `json:"clock"`
	// StartedAt is when the erase began, SignedAt when the receipt was
	// signed (after the last step, before the key was destroyed).
	StartedAt time.Time      `json:"started_at"`
	Volumes   []ErasedVolume `json:"volumes"`
	CJIPaths  []DeletedPath  `json:"cji_paths"`
	SignedAt  time.Time      `json:"signed_at"`
	Algorithm string         `json:"algorithm"`
	Chain     [][]byte       `json:"certificate_chain"` // DER, leaf first
	Signature []byte         `json:"signature,omitempty"`
}

// ErasedVolume is one LUKS volume whose key slots the wipe destroyed.
type ErasedVolume struct {
	Device string `json:"device"` // the path the device knows it by
	UUID   string `json:"luks_uuid"`
	// LUKSVersion is 1 or 2.
	LUKSVersion int `json:"luks_version"`
	// HeaderBytes is how much of the volume the header hashes cover: the
	// binary headers, the metadata and the key slot area.
	HeaderBytes        int64     `json:"header_bytes"`
	HeaderSHA256Before string    `json:"header_sha256_before"`
	HeaderSHA256After  string    `json:"header_sha256_after"`
	KeySlotsBefore     int       `json:"key_slots_before"`
	KeySlotsAfter      int       `json:"key_slots_after"`
	ErasedAt           time.Time `json:"erased_at"`
}

// DeletedPath is one configured CJI path the wipe removed.
type DeletedPath struct {
	Path      string    `json:"path"`
	Files     int       `json:"files"`
	DeletedAt time.Time `json:"deleted_at"`
}

// ErrBadReceipt is a receipt whose shape is wrong, before any signature.
var ErrBadReceipt = errors.New("malformed wipe receipt")

// Check validates a receipt's shape and bounds. It does not verify the
// signature: that needs the CA (package receipt).
func (r *WipeReceipt) Check() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrBadReceipt, fmt.Sprintf(format, args...))
	}
	switch {
	case r.Format != ReceiptFormat:
		return bad("format %q, want %q", r.Format, ReceiptFormat)
	case r.Clock != ReceiptClock:
		return bad("clock %q, want %q", r.Clock, ReceiptClock)
	case r.Algorithm != ReceiptAlgorithm:
		return bad("algorithm %q, want %q", r.Algorithm, ReceiptAlgorithm)
	case r.DeviceID == "" || r.CommandID == "":
		return bad("device_id and command_id are required")
	case r.StartedAt.IsZero() || r.SignedAt.IsZero():
		return bad("started_at and signed_at are required")
	case len(r.Volumes) > maxReceiptVolumes:
		return bad("more than %d volumes", maxReceiptVolumes)
	case len(r.CJIPaths) > maxReceiptPaths:
		return bad("more than %d CJI paths", maxReceiptPaths)
	case len(r.Chain) == 0 || len(r.Chain) > maxReceiptChain:
		return bad("certificate_chain needs 1 to %d certificates", maxReceiptChain)
	case len(r.Signature) > maxReceiptSig:
		return bad("signature longer than %d bytes", maxReceiptSig)
	}
	for i, c := range r.Chain {
		if len(c) == 0 || len(c) > maxReceiptCert {
			return bad("certificate %d: 1 to %d bytes", i, maxReceiptCert)
		}
	}
	if err := checkLens(map[string]string{"device_id": r.DeviceID, "command_id": r.CommandID}, 64); err != nil {
		return err
	}
	for i, v := range r.Volumes {
		switch {
		case v.LUKSVersion != 1 && v.LUKSVersion != 2:
			return bad("volume %d: luks_version %d", i, v.LUKSVersion)
		case !isSHA256Hex(v.HeaderSHA256Before) || !isSHA256Hex(v.HeaderSHA256After):
			return bad("volume %d: header hashes must be 64 lowercase hex digits", i)
		case v.HeaderBytes <= 0 || v.KeySlotsBefore < 0 || v.KeySlotsBefore > 32 || v.KeySlotsAfter < 0 || v.KeySlotsAfter > 32:
			return bad("volume %d: header_bytes or key slot counts out of range", i)
		case v.ErasedAt.IsZero():
			return bad("volume %d: erased_at is required", i)
		}
		if err := checkLens(map[string]string{"device": v.Device, "luks_uuid": v.UUID}, 1024); err != nil {
			return err
		}
		if v.UUID == "" || v.Device == "" {
			return bad("volume %d: device and luks_uuid are required", i)
		}
	}
	for i, p := range r.CJIPaths {
		if p.Path == "" || p.Files < 0 || p.DeletedAt.IsZero() {
			return bad("cji path %d: path and deleted_at are required, files not negative", i)
		}
		if err := checkLens(map[string]string{"path": p.Path}, 1024); err != nil {
			return err
		}
	}
	return nil
}

func isSHA256Hex(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil && s == strings.ToLower(s)
}

// Canonical is the receipt's one encoding: encoding/json of the struct
// (members in declaration order, no whitespace, times RFC 3339 as the
// device wrote them). A receipt file is exactly this; the server stores
// exactly this and its SHA-256 is the digest in the audit trail.
func (r WipeReceipt) Canonical() ([]byte, error) { return json.Marshal(r) }

// SignedBytes is what the signature covers: Canonical without the
// signature member.
func (r WipeReceipt) SignedBytes() ([]byte, error) {
	r.Signature = nil
	return json.Marshal(r)
}

// ParseReceipt reads a receipt file or stored receipt: one JSON document
// (a trailing newline allowed), unknown members refused, shape checked,
// and byte for byte its own canonical encoding, so that no byte of it can
// change without the verifier noticing, even where JSON would not care
// (case of a member name, an escape, padding bits of the base64).
func ParseReceipt(data []byte) (*WipeReceipt, error) {
	if len(data) > MaxReceiptBytes {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrBadReceipt, MaxReceiptBytes)
	}
	data = bytes.TrimSuffix(data, []byte("\n"))
	var r WipeReceipt
	if err := DecodeBody(Envelope{Type: "wipe_receipt", Body: data}, &r); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadReceipt, err)
	}
	again, err := r.Canonical()
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(again, data) {
		return nil, fmt.Errorf("%w: not in canonical form (altered after it was written)", ErrBadReceipt)
	}
	return &r, nil
}
