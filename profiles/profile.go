// Package profiles defines the compliance profile: the agency's mandatory
// settings for devices that touch CJI, as a document IT can read, diff
// and review (YAML or JSON), validated so that a mistake names its field
// and line and never replaces a profile that works. The shipped
// cjis-baseline profile encodes the CJIS Security Policy's mobile and
// endpoint controls.
package profiles

import (
	_ "embed"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Profile is one compliance profile.
type Profile struct {
	Name        string   `yaml:"name" json:"name"`
	Description string   `yaml:"description,omitempty" json:"description,omitempty"`
	Controls    Controls `yaml:"controls" json:"controls"`
}

// Controls are the settings a profile requires; a nil control is not
// checked.
type Controls struct {
	DiskEncryption *Required      `yaml:"disk_encryption,omitempty" json:"disk_encryption,omitempty"`
	SessionLock    *SessionLock   `yaml:"session_lock,omitempty" json:"session_lock,omitempty"`
	Patches        *Patches       `yaml:"patches,omitempty" json:"patches,omitempty"`
	Firewall       *Required      `yaml:"firewall,omitempty" json:"firewall,omitempty"`
	Antimalware    *Antimalware   `yaml:"antimalware,omitempty" json:"antimalware,omitempty"`
	NotRooted      *Required      `yaml:"not_rooted,omitempty" json:"not_rooted,omitempty"`
	VerifiedBoot   *Required      `yaml:"verified_boot,omitempty" json:"verified_boot,omitempty"`
	Bluetooth      *Bluetooth     `yaml:"bluetooth,omitempty" json:"bluetooth,omitempty"`
	KeyProtection  *KeyProtection `yaml:"key_protection,omitempty" json:"key_protection,omitempty"`
	Passcode       *Passcode      `yaml:"passcode,omitempty" json:"passcode,omitempty"`
	// ApplicationControl is CJIS 5.13.2 (h), unauthorized software.
	ApplicationControl *ApplicationControl `yaml:"application_control,omitempty" json:"application_control,omitempty"`
}

// Required is a control that is either required or not, with how long a
// failing device has before it loses access.
type Required struct {
	Required bool     `yaml:"required" json:"required"`
	Grace    Duration `yaml:"grace,omitempty" json:"grace,omitempty"`
	// WhereReported checks the control only on platforms that report it
	// (verified boot); elsewhere its absence is no finding.
	WhereReported bool `yaml:"where_reported,omitempty" json:"where_reported,omitempty"`
	// Platforms, when set, are the only platforms the control applies
	// to; on the others it is not evaluated at all. Names are the OS part
	// of the agent's os.platform (GOOS): see Platforms below.
	Platforms []string `yaml:"platforms,omitempty" json:"platforms,omitempty"`
}

// AppliesTo reports whether the control applies to a device whose
// os.platform is platform ("linux/amd64"); with no Platforms, to every
// platform.
func (r *Required) AppliesTo(platform string) bool {
	return r.Platforms == nil || PlatformIn(r.Platforms, platform)
}

// Platform names a control may list: the OS part of os.platform, which
// is Go's GOOS. iPadOS agents report "ios" like iPhones (Go has one GOOS
// for both); "ipados" is accepted so that a profile can say what it means.
// Devices Apple MDM manages are recorded as "ios", "ipados" or "macos":
// "macos" names those Macs, which report what Apple's protocol gives, not
// what the agent does, and "darwin" stays the Macs that run the agent.
var Platforms = []string{"linux", "darwin", "windows", "android", "ios", "ipados", "macos"}

// PlatformIn reports whether the OS part of platform ("android/arm64")
// is one of names.
func PlatformIn(names []string, platform string) bool {
	os, _, _ := strings.Cut(platform, "/")
	for _, n := range names {
		if n == os || (n == "ipados" && os == "ios") {
			return true
		}
	}
	return false
}

// Antimalware requires malicious-code protection that runs and, where
// the platform reports when its signatures were last updated (Defender,
// XProtect), keeps them current (SI-3: automatic updates).
type Antimalware struct {
	Required `yaml:",inline"`
	// MaxSignatureAge bounds the signatures' age where it is reported;
	// zero means DefaultMaxSignatureAge.
	MaxSignatureAge Duration `yaml:"max_signature_age,omitempty" json:"max_signature_age,omitempty"`
	// MaxSignatureAgeByPlatform overrides MaxSignatureAge for the
	// platforms it names (keys from Platforms): vendors update at their
	// own pace, Defender several times a day, Apple's XProtect about
	// weekly with gaps of several weeks, so one limit cannot fit both.
	MaxSignatureAgeByPlatform map[string]Duration `yaml:"max_signature_age_by_platform,omitempty" json:"max_signature_age_by_platform,omitempty"`
}

// DefaultMaxSignatureAge is seven days: Microsoft Defender itself calls its
// signatures out of date after seven days (the AVSignatureDue default),
// and vendors publish several updates a day, so a week-old set means the
// automatic update is broken, not merely late.
const DefaultMaxSignatureAge = Duration(7 * 24 * time.Hour)

// SignatureAge is the maximum signature age in force on platform (the
// agent's os.platform, "darwin/arm64", or only its OS part): its entry
// in MaxSignatureAgeByPlatform ("ipados" stands for iPads, which report
// "ios", where no "ios" entry is given), else MaxSignatureAge, else
// DefaultMaxSignatureAge.
func (a *Antimalware) SignatureAge(platform string) time.Duration {
	os, _, _ := strings.Cut(platform, "/")
	if d, ok := a.MaxSignatureAgeByPlatform[os]; ok && d > 0 {
		return d.D()
	}
	if d, ok := a.MaxSignatureAgeByPlatform["ipados"]; ok && d > 0 && os == "ios" {
		return d.D()
	}
	if a.MaxSignatureAge > 0 {
		return a.MaxSignatureAge.D()
	}
	return DefaultMaxSignatureAge.D()
}

// SessionLock requires the automatic session lock (CJIS 5.5.5: at most
// 30 minutes of inactivity).
type SessionLock struct {
	Required   bool     `yaml:"required" json:"required"`
	MaxTimeout Duration `yaml:"max_timeout" json:"max_timeout"`
	Grace      Duration `yaml:"grace,omitempty" json:"grace,omitempty"`
}

// Patches are the patch windows by severity (CJIS 5.10.4.1 [SI-2]): a
// pending security update may wait this long from its release, or where
// the platform does not say when it was released, from when the agent
// first saw it pending. An update of unknown severity (apt's case) is held
// to the critical window. A window left out is the policy's (v6.0)
// default; a longer one than the policy allows is refused.
type Patches struct {
	CriticalWithin Duration `yaml:"critical_within,omitempty" json:"critical_within,omitempty"`
	HighWithin     Duration `yaml:"high_within,omitempty" json:"high_within,omitempty"`
	MediumWithin   Duration `yaml:"medium_within,omitempty" json:"medium_within,omitempty"`
	LowWithin      Duration `yaml:"low_within,omitempty" json:"low_within,omitempty"`
	// SecurityUpdatesWithin is the single window of profiles written
	// before the windows by severity. Parse refuses it, naming the new
	// fields; a stored document that still has it is read by ParseStored
	// as each window capped at it, so no stored profile becomes looser.
	SecurityUpdatesWithin *Duration `yaml:"security_updates_within,omitempty" json:"security_updates_within,omitempty"`
	// MinOSVersion maps an OS name (as the agent reports it: "Debian
	// GNU/Linux", "macOS", "Windows", "Android") to its oldest allowed
	// version; dotted numbers compare numerically.
	MinOSVersion map[string]string `yaml:"min_os_version,omitempty" json:"min_os_version,omitempty"`
	// AndroidPatchMaxAge bounds the age of Android's security patch level.
	AndroidPatchMaxAge Duration `yaml:"android_patch_max_age,omitempty" json:"android_patch_max_age,omitempty"`
}

// PolicyWindows are the SI-2 windows of the CJIS Security Policy v6.0,
// the defaults and the longest a profile may set.
var PolicyWindows = map[string]Duration{
	"critical": Duration(15 * 24 * time.Hour),
	"high":     Duration(30 * 24 * time.Hour),
	"medium":   Duration(60 * 24 * time.Hour),
	"low":      Duration(90 * 24 * time.Hour),
}

// Window is how long a pending security update of severity (critical,
// high, medium, low; anything else is held to critical) may wait.
func (p *Patches) Window(severity string) time.Duration {
	var w Duration
	switch severity {
	case "high":
		w = p.HighWithin
	case "medium":
		w = p.MediumWithin
	case "low":
		w = p.LowWithin
	default:
		severity, w = "critical", p.CriticalWithin
	}
	if w <= 0 {
		w = PolicyWindows[severity]
	}
	return w.D()
}

// Bluetooth modes and enforcement.
const (
	BluetoothAllowList = "allow-list"
	BluetoothOff       = "off"
	EnforceBlock       = "enforce" // an unapproved peer is blocked at once
	EnforceMonitor     = "monitor" // only the finding
)

// Bluetooth is the Bluetooth policy (agency policy T).
type Bluetooth struct {
	Mode        string   `yaml:"mode" json:"mode"`
	Enforcement string   `yaml:"enforcement" json:"enforcement"`
	Grace       Duration `yaml:"grace,omitempty" json:"grace,omitempty"`
}

// KeyProtection requires the agent's identity key to be held in a TPM:
// RequireTPM by the agent's own word in each report, RequireLevel by
// what the server verified at enrollment (protocol.Key*: at least
// "tpm-unverified" or "tpm-attested"; "" requires nothing).
type KeyProtection struct {
	RequireTPM   bool   `yaml:"require_tpm" json:"require_tpm"`
	RequireLevel string `yaml:"require_level,omitempty" json:"require_level,omitempty"`
}

// Passcode is the device passcode policy, rendered for Apple devices and
// applied by the OS elsewhere (CJIS 5.13.2 (k)).
type Passcode struct {
	MinLength         int      `yaml:"min_length" json:"min_length"`
	AllowSimple       bool     `yaml:"allow_simple" json:"allow_simple"`
	MaxFailedAttempts int      `yaml:"max_failed_attempts" json:"max_failed_attempts"`
	MaxInactivity     Duration `yaml:"max_inactivity" json:"max_inactivity"`
}

// Application control modes.
const (
	AppsAllow = "allow" // only the listed applications may be installed
	AppsDeny  = "deny"  // none of the listed applications may be installed
)

// Bounds of an application control's list.
const (
	MaxBundleIDs      = 1024
	MaxBundleIDLength = 255
)

// ApplicationControl is the list of authorized (allow) or unauthorized
// (deny) software, by bundle identifier (CJIS 5.13.2 (h)). It is evaluated
// from the installed-application list of the devices that report one,
// Apple devices through InstalledApplicationList; a device that reports
// none (no agent collects one yet) is not evaluated.
type ApplicationControl struct {
	Mode string `yaml:"mode" json:"mode"`
	// BundleIDs are reverse-DNS bundle identifiers ("com.example.chat"),
	// compared regardless of case, as Apple treats them. One ending in
	// ".*" covers every identifier under it ("com.apple.*"), so that an
	// allow-list can admit a vendor's apps without naming each.
	BundleIDs []string `yaml:"bundle_ids" json:"bundle_ids"`
	Grace     Duration `yaml:"grace,omitempty" json:"grace,omitempty"`
	// Platforms: as for Required.
	Platforms []string `yaml:"platforms,omitempty" json:"platforms,omitempty"`
}

// AppliesTo reports whether the control applies to a device whose
// os.platform is platform; with no Platforms, to every platform.
func (a *ApplicationControl) AppliesTo(platform string) bool {
	return a.Platforms == nil || PlatformIn(a.Platforms, platform)
}

// Listed reports whether bundle identifier id is on the list.
func (a *ApplicationControl) Listed(id string) bool {
	for _, b := range a.BundleIDs {
		if prefix, ok := strings.CutSuffix(b, "*"); ok {
			if len(id) > len(prefix) && strings.EqualFold(id[:len(prefix)], prefix) {
				return true
			}
		} else if strings.EqualFold(id, b) {
			return true
		}
	}
	return false
}

// Authorized reports whether an installed application with bundle
// identifier id is authorized: on an allow-list, or not on a deny-list.
func (a *ApplicationControl) Authorized(id string) bool {
	return a.Listed(id) == (a.Mode == AppsAllow)
}

// Duration is a time.Duration written as "30m", "24h" or "30d".
type Duration time.Duration

// D is the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// ParseDuration reads "30d" as well as Go durations.
func ParseDuration(s string) (Duration, error) {
	s = strings.TrimSpace(s)
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 0 {
			return 0, fmt.Errorf("%q is not a number of days", s)
		}
		return Duration(time.Duration(days) * 24 * time.Hour), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is not a duration (30m, 24h, 30d)", s)
	}
	return Duration(d), nil
}

// String writes whole days as "Nd".
func (d Duration) String() string {
	if d != 0 && time.Duration(d)%(24*time.Hour) == 0 {
		return strconv.Itoa(int(time.Duration(d)/(24*time.Hour))) + "d"
	}
	return time.Duration(d).String()
}

// MarshalText writes the duration as it is read.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalYAML reads a duration and, when it is not one, says on which
// line.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseDuration(n.Value)
	if err != nil || n.Kind != yaml.ScalarNode {
		return &Error{Line: n.Line, Msg: fmt.Sprintf("%q is not a duration (30m, 24h, 30d)", n.Value)}
	}
	*d = v
	return nil
}

// UnmarshalText reads "30m", "24h" or "30d".
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	*d = v
	return err
}

//go:embed cjis-baseline.yaml
var baselineDoc []byte

// BaselineName is the shipped profile's name.
const BaselineName = "cjis-baseline"

// Baseline returns the shipped cjis-baseline profile and its document.
func Baseline() (*Profile, []byte) {
	p, err := Parse(baselineDoc)
	if err != nil {
		panic("profiles: the shipped cjis-baseline does not validate: " + err.Error())
	}
	return p, baselineDoc
}

//go:embed schema.json
var schemaDoc []byte

// Schema is the profile document's JSON Schema.
func Schema() []byte { return schemaDoc }
