// Package apple renders a compliance profile as an Apple configuration
// profile (.mobileconfig): the passcode policy and the restrictions that
// Apple devices can enforce themselves. Everything else in the profile
// is checked by Cordon's posture checks, not by the device.
//
// Key names and ranges follow Apple's device-management schema
// (github.com/apple/device-management, mdm/profiles: TopLevel.yaml,
// com.apple.mobiledevice.passwordpolicy.yaml,
// com.apple.applicationaccess.yaml). Each key is spelt once, in a struct
// tag below.
package apple

import (
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"howett.net/plist"

	"github.com/cordon-mdm/cordon/internal/input"
	"github.com/cordon-mdm/cordon/profiles"
)

// DefaultIdentifier is the reverse-DNS prefix of the profile's
// PayloadIdentifier when Options.Identifier is empty.
const DefaultIdentifier = "org.cordon-mdm.profile"

// Payload types.
const (
	typeConfiguration = "Configuration"
	typePasscode      = "com.apple.mobiledevice.passwordpolicy"
	typeRestrictions  = "com.apple.applicationaccess"
)

// Apple's documented upper bounds that the compliance profile may exceed.
const (
	maxMinLength = 16 // minLength: 0 to 16
)

// ErrNoPasscode is returned for a profile without a passcode control:
// there is nothing to put in the passcode payload, and a configuration
// profile without one would not lock the device.
var ErrNoPasscode = errors.New("apple: profile has no passcode control")

// Options name the profile on the device.
type Options struct {
	// Organization is shown as the profile's PayloadOrganization.
	Organization string
	// Identifier is the reverse-DNS prefix of PayloadIdentifier; the
	// profile's name is appended. Default DefaultIdentifier.
	Identifier string
	// UUID returns a new PayloadUUID. Default uuid.NewString; tests set
	// it for deterministic output.
	UUID func() string
}

// configuration is the top-level dictionary (TopLevel.yaml).
type configuration struct {
	PayloadType              string `plist:"PayloadType"`
	PayloadVersion           int    `plist:"PayloadVersion"`
	PayloadIdentifier        string `plist:"PayloadIdentifier"`
	PayloadUUID              string `plist:"PayloadUUID"`
	PayloadDisplayName       string `plist:"PayloadDisplayName"`
	PayloadDescription       string `plist:"PayloadDescription,omitempty"`
	PayloadOrganization      string `plist:"PayloadOrganization,omitempty"`
	PayloadRemovalDisallowed bool   `plist:"PayloadRemovalDisallowed"`
	PayloadScope             string `plist:"PayloadScope"`
	// PayloadContent holds the payload structs below.
	PayloadContent []any `plist:"PayloadContent"`
}

// PayloadHeader holds the keys every payload dictionary carries. It is
// exported only because howett.net/plist skips unexported embedded
// structs; it is not meant to be used outside this package.
type PayloadHeader struct {
	PayloadType        string `plist:"PayloadType"`
	PayloadVersion     int    `plist:"PayloadVersion"`
	PayloadIdentifier  string `plist:"PayloadIdentifier"`
	PayloadUUID        string `plist:"PayloadUUID"`
	PayloadDisplayName string `plist:"PayloadDisplayName"`
}

// passcodePayload is com.apple.mobiledevice.passwordpolicy.
type passcodePayload struct {
	PayloadHeader
	ForcePIN            bool `plist:"forcePIN"`
	MinLength           int  `plist:"minLength"`
	AllowSimple         bool `plist:"allowSimple"`
	RequireAlphanumeric bool `plist:"requireAlphanumeric"`
	// MaxFailedAttempts: on iOS the device is wiped after this many
	// failed attempts; on macOS it is locked.
	MaxFailedAttempts int `plist:"maxFailedAttempts"`
	// MaxInactivity is in minutes.
	MaxInactivity int `plist:"maxInactivity"`
	// MaxGracePeriod is in minutes; 0 requires the passcode at once.
	MaxGracePeriod int `plist:"maxGracePeriod"`
}

// restrictionsPayload is com.apple.applicationaccess.
type restrictionsPayload struct {
	PayloadHeader
	// AllowBluetoothModification false stops the user changing Bluetooth
	// settings (supervised iOS 11 and later; not on macOS).
	AllowBluetoothModification bool `plist:"allowBluetoothModification"`
}

// MobileConfig renders p's passcode and restriction settings as an
// unsigned XML configuration profile.
func MobileConfig(p *profiles.Profile, opts Options) ([]byte, error) {
	if p == nil {
		return nil, errors.New("apple: nil profile")
	}
	c := p.Controls
	if c.Passcode == nil {
		return nil, fmt.Errorf("%w: %s", ErrNoPasscode, p.Name)
	}
	if c.Passcode.MinLength > maxMinLength {
		// Rendering Apple's maximum would weaken the policy; refuse.
		return nil, input.Errorf("passcode.min_length", "apple: passcode min_length %d exceeds Apple's maximum of %d", c.Passcode.MinLength, maxMinLength)
	}
	if opts.Identifier == "" {
		opts.Identifier = DefaultIdentifier
	}
	if opts.UUID == nil {
		opts.UUID = uuid.NewString
	}
	id := opts.Identifier + "." + p.Name
	header := func(typ, suffix, name string) PayloadHeader {
		return PayloadHeader{
			PayloadType:        typ,
			PayloadVersion:     1,
			PayloadIdentifier:  id + "." + suffix,
			PayloadUUID:        opts.UUID(),
			PayloadDisplayName: name,
		}
	}

	content := []any{passcodePayload{
		PayloadHeader:       header(typePasscode, "passcode", "Passcode"),
		ForcePIN:            true,
		MinLength:           c.Passcode.MinLength,
		AllowSimple:         c.Passcode.AllowSimple,
		RequireAlphanumeric: false,
		MaxFailedAttempts:   c.Passcode.MaxFailedAttempts,
		// Apple's schema documents maxInactivity as 0 to 15 minutes; the
		// profile allows up to 30 (CJIS 5.5.5). A value the device may
		// refuse would leave no auto-lock at all, so longer settings are
		// rendered as Apple's 15, which still meets CJIS.
		MaxInactivity:  min(inactivityMinutes(c.Passcode.MaxInactivity.D()), 15),
		MaxGracePeriod: 0,
	}}

	if c.Bluetooth != nil {
		// Apple has no per-device Bluetooth allow-list, so the allow-list
		// itself is enforced by Cordon's posture checks; the device only
		// stops the user changing Bluetooth settings.
		//
		// Mode "off" renders the same payload: Apple's schema documents
		// no key that turns Bluetooth off. The DisableBluetooth key seen
		// in third-party samples (com.apple.MCXBluetooth, com.apple.MCX)
		// is not in Apple's documentation, so it is left out; "off" is
		// enforced by the posture checks as well.
		content = append(content, restrictionsPayload{
			PayloadHeader:              header(typeRestrictions, "restrictions", "Restrictions"),
			AllowBluetoothModification: false,
		})
	}

	// Disk encryption has no payload: iOS data protection encrypts the
	// device whenever a passcode is set, which the passcode payload
	// forces. FileVault on macOS is out of scope here, and no keys are
	// invented for it.

	doc := configuration{
		PayloadType:              typeConfiguration,
		PayloadVersion:           1,
		PayloadIdentifier:        id,
		PayloadUUID:              opts.UUID(),
		PayloadDisplayName:       "Cordon: " + p.Name,
		PayloadDescription:       p.Description,
		PayloadOrganization:      opts.Organization,
		PayloadRemovalDisallowed: true,
		PayloadScope:             "System",
		PayloadContent:           content,
	}
	out, err := plist.MarshalIndent(doc, plist.XMLFormat, "\t")
	if err != nil {
		return nil, fmt.Errorf("apple: encode %s: %w", p.Name, err)
	}
	return out, nil
}

// inactivityMinutes is d in whole minutes, rounded down and at least 1
// (0 would mean no auto-lock).
func inactivityMinutes(d time.Duration) int {
	return max(int(d/time.Minute), 1)
}
