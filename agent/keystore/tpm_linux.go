//go:build linux && !android

package keystore

import (
	"errors"
	"fmt"
	"os"

	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpm2/transport/linuxtpm"
)

// tpmDevice is the kernel's resource-managed TPM: it flushes whatever a
// closed descriptor left loaded, and lets several processes share the TPM.
const tpmDevice = "/dev/tpmrm0"

// OpenPlatform opens this device's TPM (an Opener). Errors wrap ErrNoTPM:
// absent, or not openable by this user (root or the tss group may).
func OpenPlatform() (transport.TPMCloser, error) {
	t, err := linuxtpm.Open(tpmDevice)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s does not exist", ErrNoTPM, tpmDevice)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoTPM, err)
	}
	return t, nil
}
