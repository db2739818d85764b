package protocol

// Key protection levels: what the server verified, at enrollment, of
// where a device's identity key is held. Shown on the device, in every
// evaluation and in the access decision (key_protection), and what a
// profile's key_protection.require_level asks for.
const (
	// KeyTPMAttested: the key is certified by an attestation key bound to
	// a TPM whose EK certificate chains to a configured EK root.
	KeyTPMAttested = "tpm-attested"
	// KeyTPMUnverified: every TPM check passed, but no EK root vouched
	// for the TPM (none configured, or the TPM has no EK certificate);
	// its EK is recorded and trusted on first use.
	KeyTPMUnverified = "tpm-unverified"
	// KeySoftware: a file key, or an enrollment that proved nothing.
	KeySoftware = "software"
)

// KeyProtectionRank orders the levels: software 1 < tpm-unverified 2 <
// tpm-attested 3; anything else is 0, below every level.
func KeyProtectionRank(level string) int {
	switch level {
	case KeyTPMAttested:
		return 3
	case KeyTPMUnverified:
		return 2
	case KeySoftware:
		return 1
	}
	return 0
}

// KeyLevel is level, or KeySoftware when none was recorded (a device
// from before attestation, an Apple device): a key nothing proved is a
// software key.
func KeyLevel(level string) string {
	if level == "" {
		return KeySoftware
	}
	return level
}
