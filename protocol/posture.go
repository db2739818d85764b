package protocol

import (
	"errors"
	"fmt"
	"time"

	"github.com/cordon-mdm/cordon/internal/input"
)

// Posture is one report of a device's state. Each section that a collector
// reads carries where it came from (Source) and, for every value it could
// not read, why (Unknown, keyed by the JSON name of the value): the server
// must be able to tell "not encrypted" from "could not tell". A section
// absent from a report was not collected on that platform.
type Posture struct {
	CollectedAt time.Time       `json:"collected_at"`
	OS          OSIdentity      `json:"os"`
	Lock        *LockState      `json:"lock,omitempty"`
	LockPolicy  *LockPolicy     `json:"lock_policy,omitempty"`
	Disk        *DiskEncryption `json:"disk,omitempty"`
	Patch       *PatchLevel     `json:"patch,omitempty"`
	Bluetooth   *Bluetooth      `json:"bluetooth,omitempty"`
	Hygiene     *Hygiene        `json:"hygiene,omitempty"`
	Identity    *Identity       `json:"identity,omitempty"`
	// Software and Profiles come from Apple devices (InstalledApplicationList,
	// ProfileList); no agent collects them yet.
	Software *Software        `json:"software,omitempty"`
	Profiles *ManagedProfiles `json:"profiles,omitempty"`
}

// Software is the applications installed on the device, for the
// profile's application control (5.13.2 (h)).
type Software struct {
	Applications []Application `json:"applications"`
	Provenance
}

// Application is one installed application.
type Application struct {
	ID      string `json:"id"` // bundle identifier: "com.apple.mobilesafari"
	Name    string `json:"name,omitempty"`
	Version string `json:"version,omitempty"`
}

// ManagedProfiles are the configuration profiles installed on the device,
// to tell whether Cordon's (passcode, restrictions) are in place.
type ManagedProfiles struct {
	Identifiers []string `json:"identifiers"` // PayloadIdentifier of each
	Provenance
}

// Identity is where the agent holds the device's identity key.
type Identity struct {
	// KeyStorage is "file" (0600 in the state dir) or "tpm".
	KeyStorage string `json:"key_storage"`
}

// Provenance says where a section's values came from and why any of them
// is missing. A nil value with neither an Unknown nor a NotApplicable
// entry is a collector bug.
type Provenance struct {
	Source  string            `json:"source,omitempty"`
	Unknown map[string]string `json:"unknown,omitempty"`
	// NotApplicable lists values that do not exist on this platform (root
	// detection on a desktop OS, whose users have administrators by
	// design), keyed like Unknown, with why. It is a statement about the
	// platform, not a failed read: the server decides from its profile
	// whether the control applies there, and where it does, a value the
	// device calls not applicable is still treated as unknown.
	NotApplicable map[string]string `json:"not_applicable,omitempty"`
}

// SetUnknown records why the value named field could not be read.
func (p *Provenance) SetUnknown(field, reason string) {
	if p.Unknown == nil {
		p.Unknown = map[string]string{}
	}
	p.Unknown[field] = reason
}

// SetNotApplicable records why the value named field does not exist on
// this platform.
func (p *Provenance) SetNotApplicable(field, reason string) {
	if p.NotApplicable == nil {
		p.NotApplicable = map[string]string{}
	}
	p.NotApplicable[field] = reason
}

// Explained reports whether a missing value named field carries a reason,
// unknown or not applicable.
func (p Provenance) Explained(field string) bool {
	_, u := p.Unknown[field]
	_, na := p.NotApplicable[field]
	return u || na
}

// OSIdentity is what the device says it is.
type OSIdentity struct {
	Name         string `json:"name"`    // e.g. "Debian GNU/Linux"
	Version      string `json:"version"` // e.g. "12"
	Build        string `json:"build,omitempty"`
	Kernel       string `json:"kernel,omitempty"`
	Hostname     string `json:"hostname"`
	AgentVersion string `json:"agent_version"`
	Platform     string `json:"platform"` // GOOS/GOARCH
	Source       string `json:"source,omitempty"`
	Error        string `json:"error,omitempty"`
}

// Lock state values.
const (
	LockLocked   = "locked"
	LockUnlocked = "unlocked"
	LockUnknown  = "unknown"
)

// LockState is the session lock reading. Incidents are classified by it,
// so it is read fresh for every report.
type LockState struct {
	State       string     `json:"state"` // LockLocked, LockUnlocked, LockUnknown
	IdleSeconds *int64     `json:"idle_seconds,omitempty"`
	IdleSince   *time.Time `json:"idle_since,omitempty"`
	Provenance
}

// LockPolicy is the configured automatic session lock.
type LockPolicy struct {
	Enabled *bool `json:"enabled,omitempty"`
	// TimeoutSeconds is the idle time after which the session locks: the
	// idle delay plus any lock delay. Zero means never.
	TimeoutSeconds *int64 `json:"timeout_seconds,omitempty"`
	Provenance
}

// Disk encryption states.
const (
	DiskEncrypted   = "encrypted"
	DiskUnencrypted = "unencrypted"
	DiskInProgress  = "in_progress" // encrypting or decrypting
	DiskUnknown     = "unknown"
)

// DiskEncryption describes the system volume.
type DiskEncryption struct {
	State   string `json:"state"`
	Volume  string `json:"volume,omitempty"` // "/", "C:"
	Device  string `json:"device,omitempty"` // "/dev/nvme0n1p3"
	Scheme  string `json:"scheme,omitempty"` // "luks2", "filevault", "bitlocker", "android-fbe"
	Cipher  string `json:"cipher,omitempty"` // "aes-xts-plain64"
	KeyBits int    `json:"key_bits,omitempty"`
	Provenance
}

// PatchLevel is how current the device's software is.
type PatchLevel struct {
	PendingSecurity *int       `json:"pending_security,omitempty"` // security updates available, not installed
	PendingTotal    *int       `json:"pending_total,omitempty"`
	LastUpdate      *time.Time `json:"last_update,omitempty"` // last time updates were installed
	RebootRequired  *bool      `json:"reboot_required,omitempty"`
	SecurityPatch   string     `json:"security_patch,omitempty"` // Android: ro.build.version.security_patch
	CheckedAt       *time.Time `json:"checked_at,omitempty"`     // when pending updates were counted (cached)
	// Pending lists the pending security updates, for the patch windows
	// by severity (SI-2). An agent that sends only PendingSecurity is
	// held to the critical window. Not a pointer: an agent without the
	// list leaves it out, and an empty list with PendingSecurity 0 says
	// nothing is pending.
	Pending []PendingUpdate `json:"pending,omitempty"`
	Provenance
}

// Update severities, as the platform rates them (MSRC on Windows).
// SeverityUnknown is apt's case: it is held to the critical window.
const (
	SeverityCritical = "critical"
	SeverityHigh     = "high" // MSRC "Important"
	SeverityMedium   = "medium"
	SeverityLow      = "low"
	SeverityUnknown  = "unknown"
)

// PendingUpdate is one security update that is available and not
// installed. Its dates come from the device and are not trusted for more
// than they can show: the server never lets them give more time than its
// own first sighting would.
type PendingUpdate struct {
	Name     string `json:"name"`
	Severity string `json:"severity"` // SeverityCritical ... SeverityUnknown
	// ReleasedAt is when the vendor released the update, where the
	// platform says (Windows Update's LastDeploymentChangeTime).
	ReleasedAt *time.Time `json:"released_at,omitempty"`
	// FirstSeen is when this agent first found the update pending; it is
	// kept in the agent's state across restarts.
	FirstSeen time.Time `json:"first_seen"`
}

// Bluetooth is the radio and the peers it knows.
type Bluetooth struct {
	// Present is false when the device has no Bluetooth adapter.
	Present *bool             `json:"present,omitempty"`
	Powered *bool             `json:"powered,omitempty"`
	Adapter string            `json:"adapter,omitempty"` // adapter address
	Devices []BluetoothDevice `json:"devices,omitempty"`
	Provenance
}

// BluetoothDevice is one peer the adapter knows of.
type BluetoothDevice struct {
	Address   string `json:"address"` // "AA:BB:CC:DD:EE:FF"
	Name      string `json:"name,omitempty"`
	Class     uint32 `json:"class,omitempty"` // Class of Device, classic only
	Type      string `json:"type,omitempty"`  // "audio", "input-keyboard", ... as the OS names it
	Paired    bool   `json:"paired"`
	Connected bool   `json:"connected"`
	Blocked   bool   `json:"blocked"`
}

// Hygiene is the rest of the baseline: firewall, malicious-code
// protection, boot integrity and root/jailbreak detection.
type Hygiene struct {
	FirewallOn    *bool    `json:"firewall_on,omitempty"`
	Firewall      string   `json:"firewall,omitempty"` // "nftables", "ufw", "alf", "windows-firewall"
	AntimalwareOn *bool    `json:"antimalware_on,omitempty"`
	Antimalware   []string `json:"antimalware,omitempty"` // products found running
	// AntimalwareSignaturesAt is when the malware signatures were last
	// updated, where the platform says (Defender, XProtect); absent and
	// listed nowhere where it does not, since then only "running" is
	// checked (SI-3).
	AntimalwareSignaturesAt *time.Time `json:"antimalware_signatures_at,omitempty"`
	SecureBoot              *bool      `json:"secure_boot,omitempty"` // UEFI Secure Boot, SIP, verified boot "green"
	RootedSuspected         *bool      `json:"rooted_suspected,omitempty"`
	RootedEvidence          []string   `json:"rooted_evidence,omitempty"`
	Provenance
}

// Limits on what a report may carry; a report beyond them is refused.
const (
	MaxBluetoothDevices = 256
	MaxPendingUpdates   = 512
	MaxApplications     = 4096
	MaxProfiles         = 256
	maxListItems        = 32
	// MaxPostureText bounds each text value of a report.
	MaxPostureText = 512
)

// Check validates a Posture report.
func (p *Posture) Check() error {
	if p.CollectedAt.IsZero() {
		return errors.New("collected_at is required")
	}
	if p.OS.Platform == "" {
		return errors.New("os.platform is required")
	}
	fields := map[string]string{
		"os.name": p.OS.Name, "os.version": p.OS.Version, "os.build": p.OS.Build,
		"os.kernel": p.OS.Kernel, "os.hostname": p.OS.Hostname,
		"os.agent_version": p.OS.AgentVersion, "os.platform": p.OS.Platform, "os.error": p.OS.Error,
	}
	provs := map[string]*Provenance{}
	if l := p.Lock; l != nil {
		if err := oneOf("lock.state", l.State, LockLocked, LockUnlocked, LockUnknown); err != nil {
			return err
		}
		if l.IdleSeconds != nil && *l.IdleSeconds < 0 {
			return errors.New("lock.idle_seconds must not be negative")
		}
		provs["lock"] = &l.Provenance
	}
	if l := p.LockPolicy; l != nil {
		if l.TimeoutSeconds != nil && *l.TimeoutSeconds < 0 {
			return errors.New("lock_policy.timeout_seconds must not be negative")
		}
		provs["lock_policy"] = &l.Provenance
	}
	if d := p.Disk; d != nil {
		if err := oneOf("disk.state", d.State, DiskEncrypted, DiskUnencrypted, DiskInProgress, DiskUnknown); err != nil {
			return err
		}
		if d.KeyBits < 0 || d.KeyBits > 8192 {
			return errors.New("disk.key_bits out of range")
		}
		fields["disk.volume"], fields["disk.device"], fields["disk.scheme"], fields["disk.cipher"] = d.Volume, d.Device, d.Scheme, d.Cipher
		provs["disk"] = &d.Provenance
	}
	if pl := p.Patch; pl != nil {
		if (pl.PendingSecurity != nil && *pl.PendingSecurity < 0) || (pl.PendingTotal != nil && *pl.PendingTotal < 0) {
			return errors.New("patch counts must not be negative")
		}
		fields["patch.security_patch"] = pl.SecurityPatch
		if len(pl.Pending) > MaxPendingUpdates {
			return fmt.Errorf("patch.pending: more than %d", MaxPendingUpdates)
		}
		for i, u := range pl.Pending {
			if u.Name == "" {
				return fmt.Errorf("patch.pending[%d].name is required", i)
			}
			if err := oneOf(fmt.Sprintf("patch.pending[%d].severity", i), u.Severity,
				SeverityCritical, SeverityHigh, SeverityMedium, SeverityLow, SeverityUnknown); err != nil {
				return err
			}
			if u.FirstSeen.IsZero() {
				return fmt.Errorf("patch.pending[%d].first_seen is required", i)
			}
			fields[fmt.Sprintf("patch.pending[%d].name", i)] = u.Name
		}
		provs["patch"] = &pl.Provenance
	}
	if b := p.Bluetooth; b != nil {
		if len(b.Devices) > MaxBluetoothDevices {
			return fmt.Errorf("bluetooth.devices: more than %d", MaxBluetoothDevices)
		}
		fields["bluetooth.adapter"] = b.Adapter
		for i, d := range b.Devices {
			if d.Address == "" {
				return fmt.Errorf("bluetooth.devices[%d].address is required", i)
			}
			fields[fmt.Sprintf("bluetooth.devices[%d].address", i)] = d.Address
			fields[fmt.Sprintf("bluetooth.devices[%d].name", i)] = d.Name
			fields[fmt.Sprintf("bluetooth.devices[%d].type", i)] = d.Type
		}
		provs["bluetooth"] = &b.Provenance
	}
	if h := p.Hygiene; h != nil {
		if len(h.Antimalware) > maxListItems || len(h.RootedEvidence) > maxListItems {
			return fmt.Errorf("hygiene lists: more than %d items", maxListItems)
		}
		fields["hygiene.firewall"] = h.Firewall
		for i, s := range h.Antimalware {
			fields[fmt.Sprintf("hygiene.antimalware[%d]", i)] = s
		}
		for i, s := range h.RootedEvidence {
			fields[fmt.Sprintf("hygiene.rooted_evidence[%d]", i)] = s
		}
		provs["hygiene"] = &h.Provenance
	}
	if sw := p.Software; sw != nil {
		if len(sw.Applications) > MaxApplications {
			return fmt.Errorf("software.applications: more than %d", MaxApplications)
		}
		for i, a := range sw.Applications {
			if a.ID == "" {
				return fmt.Errorf("software.applications[%d].id is required", i)
			}
			fields[fmt.Sprintf("software.applications[%d].id", i)] = a.ID
			fields[fmt.Sprintf("software.applications[%d].name", i)] = a.Name
			fields[fmt.Sprintf("software.applications[%d].version", i)] = a.Version
		}
		provs["software"] = &sw.Provenance
	}
	if pr := p.Profiles; pr != nil {
		if len(pr.Identifiers) > MaxProfiles {
			return fmt.Errorf("profiles.identifiers: more than %d", MaxProfiles)
		}
		for i, id := range pr.Identifiers {
			if id == "" {
				return fmt.Errorf("profiles.identifiers[%d] is empty", i)
			}
			fields[fmt.Sprintf("profiles.identifiers[%d]", i)] = id
		}
		provs["profiles"] = &pr.Provenance
	}
	for name, pv := range provs {
		fields[name+".source"] = pv.Source
		for list, m := range map[string]map[string]string{"unknown": pv.Unknown, "not_applicable": pv.NotApplicable} {
			if len(m) > maxListItems {
				return fmt.Errorf("%s.%s: more than %d entries", name, list, maxListItems)
			}
			for k, v := range m {
				// A key names a field, and lands in logs and pages as one.
				if err := input.Text(name+"."+list+" key", k, 64); err != nil {
					return err
				}
				fields[name+"."+list+"."+k] = v
			}
		}
	}
	return checkFreeLens(fields, MaxPostureText)
}

func oneOf(field, v string, allowed ...string) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return fmt.Errorf("%s must be one of %v", field, allowed)
}
