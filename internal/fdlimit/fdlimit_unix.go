//go:build unix

package fdlimit

import "syscall"

// Raise lifts the soft open-file limit to the hard one and returns the
// limit then in force. Go's runtime does the same at start-up on some
// systems; doing it here makes the figure the server logs the one it
// runs with. Where the system refuses the hard limit as the soft one
// (macOS, for an unlimited hard limit), the soft limit stays.
func Raise() (Limit, error) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return Limit{}, err
	}
	if r.Cur < r.Max {
		want := r
		want.Cur = r.Max
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want) == nil {
			r = want
		}
	}
	return Limit{Soft: uint64(r.Cur), Hard: uint64(r.Max)}, nil
}
