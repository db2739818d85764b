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

// PlatformTPM is this device's TPM, or ErrNoTPM.
func PlatformTPM() (Opener, error) {
	if _, err := os.Stat(tpmDevice); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s does not exist", ErrNoTPM, tpmDevice)
	}
	open := func() (transport.TPMCloser, error) { return linuxtpm.Open(tpmDevice) }
	// Present is not enough: the agent must be allowed to open it (root
	// or the tss group).
	t, err := open()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoTPM, err)
	}
	t.Close()
	return open, nil
}
