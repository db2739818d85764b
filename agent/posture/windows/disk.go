package windows

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/cordon-mdm/cordon/protocol"
)

// BitLockerSource names where ParseBitLocker's values come from.
const BitLockerSource = "Win32_EncryptableVolume (root/cimv2/Security/MicrosoftVolumeEncryption)"

type encryptableVolume struct {
	DriveLetter      string  `json:"DriveLetter"`
	ProtectionStatus flexInt `json:"ProtectionStatus"`
	ConversionStatus flexInt `json:"ConversionStatus"`
	EncryptionMethod flexInt `json:"EncryptionMethod"`
}

// bitLockerCiphers maps EncryptionMethod to cipher and key size.
var bitLockerCiphers = map[int64]struct {
	cipher string
	bits   int
}{
	1: {"aes-cbc-diffuser", 128},
	2: {"aes-cbc-diffuser", 256},
	3: {"aes-cbc", 128},
	4: {"aes-cbc", 256},
	6: {"aes-xts", 128},
	7: {"aes-xts", 256},
}

// ParseBitLocker reads the system volume's BitLocker state from
// Get-CimInstance Win32_EncryptableVolume | Select-Object DriveLetter,
// ProtectionStatus, ConversionStatus, EncryptionMethod | ConvertTo-Json.
//
// The state says whether the data at rest is protected: a fully
// encrypted volume whose protection is off (suspended, or device
// encryption waiting for a key backup) has its key stored in the clear
// and is reported unencrypted, with the raw values in Source.
func ParseBitLocker(o Output, volume string) *protocol.DiskEncryption {
	d := &protocol.DiskEncryption{State: protocol.DiskUnknown, Volume: volume}
	d.Source = BitLockerSource
	if why := o.failure("Win32_EncryptableVolume query"); why != "" {
		d.SetUnknown("state", why)
		return d
	}
	items, err := jsonList(o.Stdout)
	if err != nil {
		d.SetUnknown("state", clip("Win32_EncryptableVolume output is not JSON: "+err.Error()))
		return d
	}
	var v *encryptableVolume
	for _, it := range items {
		var e encryptableVolume
		if err := json.Unmarshal(it, &e); err != nil {
			d.SetUnknown("state", clip("Win32_EncryptableVolume output is not a volume: "+err.Error()))
			return d
		}
		if strings.EqualFold(strings.TrimSpace(e.DriveLetter), volume) {
			v = &e
			break
		}
	}
	if v == nil {
		d.SetUnknown("state", fmt.Sprintf("Win32_EncryptableVolume lists no volume %s", volume))
		return d
	}
	conv, prot := v.ConversionStatus, v.ProtectionStatus
	d.Source = clip(fmt.Sprintf("%s: ProtectionStatus=%s ConversionStatus=%s EncryptionMethod=%s",
		BitLockerSource, rawOr(prot), rawOr(conv), rawOr(v.EncryptionMethod)))
	if !conv.set {
		d.SetUnknown("state", "ConversionStatus missing or not a number: "+rawOr(conv))
		return d
	}
	switch conv.v {
	case 0: // FullyDecrypted
		d.State = protocol.DiskUnencrypted
		return d
	case 1: // FullyEncrypted
		switch {
		case prot.set && prot.v == 1:
			d.State = protocol.DiskEncrypted
		case prot.set && prot.v == 0:
			d.State = protocol.DiskUnencrypted
		default:
			d.SetUnknown("state", "volume is encrypted but its ProtectionStatus is unknown: "+rawOr(prot))
		}
	case 2, 3, 4, 5: // encrypting, decrypting, or either paused part way
		d.State = protocol.DiskInProgress
	default:
		d.SetUnknown("state", "unrecognised ConversionStatus "+rawOr(conv))
		return d
	}
	d.Scheme = "bitlocker"
	m := v.EncryptionMethod
	c, ok := bitLockerCiphers[m.v]
	switch {
	case m.set && ok:
		d.Cipher, d.KeyBits = c.cipher, c.bits
	case m.set && m.v == 5:
		// eDrive: the drive's own firmware encrypts, and Windows is not
		// told with what.
		d.Cipher = "hardware"
		d.SetUnknown("key_bits", "hardware encryption: the drive does not report its key size")
	default:
		d.SetUnknown("cipher", "unrecognised EncryptionMethod "+rawOr(m))
		d.SetUnknown("key_bits", "unrecognised EncryptionMethod "+rawOr(m))
	}
	return d
}

func rawOr(f flexInt) string {
	if f.raw == "" {
		return "missing"
	}
	return f.raw
}
