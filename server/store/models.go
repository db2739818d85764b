package store

import "time"

// Device is an enrolled device.
type Device struct {
	ID           string `gorm:"primaryKey;size:36"`
	Name         string `gorm:"size:256"`
	Hostname     string `gorm:"size:256"`
	Platform     string `gorm:"size:64"`
	OSName       string `gorm:"size:256"`
	OSVersion    string `gorm:"size:256"`
	AgentVersion string `gorm:"size:64"`
	Serial       string `gorm:"size:256"`
	Owner        string `gorm:"size:256"`
	EnrolledAt   time.Time
	// Status is "active" or "revoked".
	Status     string `gorm:"size:16;index"`
	Online     bool
	LastSeen   *time.Time
	LastAddr   string `gorm:"size:64"`
	CertSerial string `gorm:"size:64"`
	// Posture is the latest report, JSON as the agent sent it.
	// PostureAt is its trusted time (PostureReport.TrustedAt), never the
	// device's word alone; PostureSkewSeconds is set when the device's
	// clock was off for that report (PostureReport.SkewSeconds).
	Posture            string
	PostureAt          *time.Time
	PostureSkewSeconds *int64
	// QuarantinedAt is set while an incident's playbook holds the device
	// in quarantine: it is refused CJI access until the LASO resolves
	// the incident.
	QuarantinedAt      *time.Time
	QuarantineIncident string `gorm:"size:36"`
	// GroupName picks the compliance profile; "" is the default group.
	GroupName string `gorm:"size:64"`
	// ComplianceAt is when the device was last evaluated; nil: never.
	ComplianceAt *time.Time
	// ComplianceState is the state last recorded (and audited), so a
	// change by the clock (grace running out) is noticed by the sweep.
	ComplianceState string `gorm:"size:16"`
	// CapabilityVersion and Capabilities are what the agent announced in
	// its last hello (protocol.CapabilityVersion; the names comma-joined):
	// what the server may send it.
	CapabilityVersion int    `gorm:"column:capability_version;not null;default:0"`
	Capabilities      string `gorm:"column:capabilities;not null;default:''"`
	// PostureCount is how many reports of the device's history are kept
	// (SavePosture counts and prunes them).
	PostureCount int64 `gorm:"not null;default:0"`
	// EvaluatedFingerprint is what the device's findings were last
	// evaluated from (compliance's fingerprint, hex); "" means evaluate
	// the next report.
	EvaluatedFingerprint string `gorm:"size:64;not null;default:''"`
	// OnlineServer is the origin of the process holding the device's
	// connection (fanout.Bus.Origin), '' with one process: only that
	// process's disconnect, or its death (ReapOnline), clears Online.
	OnlineServer string `gorm:"column:online_server;not null;default:''"`
	// KeyProtection is what the enrollment proved of the identity key
	// (attest.Level*: tpm-attested, tpm-unverified, software); EKSHA256
	// the EK public key's SHA-256 (hex) for a TPM device.
	KeyProtection string `gorm:"column:key_protection;size:16;not null;default:'software'"`
	EKSHA256      string `gorm:"column:ek_sha256;size:64;not null;default:''"`
}

// Certificate is a device certificate the CA issued.
type Certificate struct {
	Serial    string `gorm:"primaryKey;size:64"`
	DeviceID  string `gorm:"size:36;index"`
	NotBefore time.Time
	NotAfter  time.Time
	IssuedAt  time.Time
	Revoked   bool
	RevokedAt *time.Time
	Reason    string `gorm:"size:256"`
}

// EnrollmentToken is a one-time (or n-time) enrollment secret, stored as
// a SHA-256 hash only.
type EnrollmentToken struct {
	ID        string `gorm:"primaryKey;size:32"`
	Hash      []byte
	ExpiresAt time.Time
	Uses      int
	UsesLeft  int
	Owner     string `gorm:"size:256"`
	CreatedBy string `gorm:"size:256"`
	CreatedAt time.Time
	// Purpose is what the token is for: "" (devices enrolled one by one)
	// or TokenPurposeAgentPackage.
	Purpose string `gorm:"size:32"`
}

// TokenPurposeAgentPackage marks a token baked into an agent package:
// it enrolls agents only, never an Apple device.
const TokenPurposeAgentPackage = "agent-package"

// PostureReport is one entry of a device's bounded posture history.
type PostureReport struct {
	ID         uint64    `gorm:"primaryKey;autoIncrement"`
	DeviceID   string    `gorm:"size:36;uniqueIndex:idx_device_report;index:idx_device_received"`
	ReportID   string    `gorm:"size:64;uniqueIndex:idx_device_report"`
	ReceivedAt time.Time `gorm:"index:idx_device_received"`
	// CollectedAt is the time the device gave, kept for the record
	// whatever its clock said.
	CollectedAt time.Time
	// TrustedAt is the time the server orders history by: the device's
	// time when it is believable, never after ReceivedAt (see
	// gateway's trust rule). Zero in rows stored before it existed.
	TrustedAt time.Time
	// ClockSkew: the device's time was not believable (more than
	// protocol.MaxClockSkew ahead of receipt, or before enrollment), so
	// TrustedAt is ReceivedAt. SkewSeconds is CollectedAt − ReceivedAt,
	// how far off the device's clock was.
	ClockSkew   bool
	SkewSeconds int64
	Body        string
}

// LockEvent is one change in a device's lock state, at the trusted time
// of the report that carried it.
type LockEvent struct {
	ID       uint64    `gorm:"primaryKey;autoIncrement"`
	DeviceID string    `gorm:"size:36;index:idx_lock_device_at"`
	At       time.Time `gorm:"index:idx_lock_device_at"`
	State    string    `gorm:"size:16"`
	Source   string    `gorm:"size:128"`
	// ClockSkew and SkewSeconds are the report's: At is the server's
	// receive time because the device's clock was off by SkewSeconds.
	ClockSkew   bool
	SkewSeconds int64
}

// APIKey is a bearer credential for the REST API, stored hashed.
type APIKey struct {
	ID        string `gorm:"primaryKey;size:32"`
	Name      string `gorm:"size:256"`
	Role      string `gorm:"size:32"`
	Hash      []byte
	CreatedAt time.Time
	CreatedBy string `gorm:"size:256"`
	Disabled  bool
}

// User is a console user; PasswordHash is an argon2id or PBKDF2 string.
type User struct {
	ID           string `gorm:"primaryKey;size:36"`
	Email        string `gorm:"size:256;uniqueIndex"`
	Role         string `gorm:"size:32"`
	PasswordHash string `gorm:"size:256"`
	CreatedAt    time.Time
	// PasswordHistory is the previous hashes, newest first, JSON: a
	// password may not come back within the policy's history (10).
	PasswordHistory string
	PasswordSetAt   *time.Time

	// FailedLogins counts consecutive failed sign-ins (password or second
	// factor) since FirstFailedAt; LockedAt is set when they reach the
	// lockout threshold and cleared by an it-admin or, under the v5.8
	// rule, by time.
	FailedLogins  int
	FirstFailedAt *time.Time
	LockedAt      *time.Time

	// TOTPSecret is the RFC 6238 shared secret (base32) once enrolled;
	// TOTPAlgorithm is SHA1 or SHA256. TOTPLastStep is the last time step
	// accepted, so a code cannot be used twice.
	TOTPSecret    string `gorm:"size:128"`
	TOTPAlgorithm string `gorm:"size:16"`
	TOTPLastStep  int64
	// RecoveryCodes are the SHA-256 hashes of the unused one-time
	// recovery codes, JSON.
	RecoveryCodes string

	// DisabledAt is set while an it-admin has turned the account off
	// (agency policy W.3, server/accounts): no sign-in, no session.
	DisabledAt *time.Time
}

// Session is a console sign-in. ID is the SHA-256 of the cookie's token,
// so reading the table does not yield usable sessions.
type Session struct {
	ID     string `gorm:"primaryKey;size:64"`
	UserID string `gorm:"size:36;index"`
	// Stage is "mfa" (password accepted, second factor due), "enroll"
	// (second factor required but not yet set up) or "active".
	Stage string `gorm:"size:16"`
	CSRF  string `gorm:"size:64"`
	// PendingTOTP is the secret being enrolled, until a code confirms it.
	PendingTOTP string `gorm:"size:128"`
	Source      string `gorm:"size:64"`
	CreatedAt   time.Time
	LastSeen    time.Time
}

// AuditEntry is one link of the hash-chained audit log.
type AuditEntry struct {
	Seq      int64     `gorm:"primaryKey;autoIncrement:false"`
	Time     time.Time `gorm:"index"`
	Actor    string    `gorm:"size:256"`
	Source   string    `gorm:"size:128"`
	Action   string    `gorm:"size:64;index"`
	Target   string    `gorm:"size:256"`
	Outcome  string    `gorm:"size:16"`
	Details  string
	PrevHash string `gorm:"size:64"`
	Hash     string `gorm:"size:64"`
}

// AuditHead is the single row that serialises appends: every append
// updates it first, which takes the row (Postgres) or database (SQLite)
// write lock before the previous hash is read.
type AuditHead struct {
	ID   int `gorm:"primaryKey;autoIncrement:false"`
	Seq  int64
	Hash string `gorm:"size:64"`
}
