//go:build !unix

package fdlimit

import "errors"

// Raise is unsupported here: Windows has no per-process open-file limit
// of this kind.
func Raise() (Limit, error) { return Limit{}, errors.ErrUnsupported }
