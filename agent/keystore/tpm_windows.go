//go:build windows

package keystore

import (
	"fmt"

	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpm2/transport/windowstpm"
)

// PlatformTPM is this device's TPM through TBS, or ErrNoTPM. It builds
// (CGO_ENABLED=0) but has not run on a real Windows machine.
func PlatformTPM() (Opener, error) {
	open := func() (transport.TPMCloser, error) { return windowstpm.Open() }
	t, err := open()
	if err != nil {
		return nil, fmt.Errorf("%w: TBS: %v", ErrNoTPM, err)
	}
	t.Close()
	return open, nil
}
