//go:build !(linux && !android) && !windows

package keystore

import "fmt"

// PlatformTPM: the agent reaches no TPM on this platform.
func PlatformTPM() (Opener, error) {
	return nil, fmt.Errorf("%w: not supported on this platform", ErrNoTPM)
}
