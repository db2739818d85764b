//go:build !(linux && !android) && !windows

package keystore

import (
	"fmt"

	"github.com/google/go-tpm/tpm2/transport"
)

// OpenPlatform: the agent reaches no TPM on this platform.
func OpenPlatform() (transport.TPMCloser, error) {
	return nil, fmt.Errorf("%w: not supported on this platform", ErrNoTPM)
}
