//go:build windows

package keystore

import (
	"fmt"

	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpm2/transport/windowstpm"
)

// OpenPlatform opens this device's TPM through TBS (an Opener); errors
// wrap ErrNoTPM. It builds (CGO_ENABLED=0) but has not run on a real
// Windows machine.
func OpenPlatform() (transport.TPMCloser, error) {
	t, err := windowstpm.Open()
	if err != nil {
		return nil, fmt.Errorf("%w: TBS: %v", ErrNoTPM, err)
	}
	return t, nil
}
