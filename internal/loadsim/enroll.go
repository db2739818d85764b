package loadsim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/cordon-mdm/cordon/agent/enrollment"
	"github.com/cordon-mdm/cordon/agent/keystore"
	"github.com/cordon-mdm/cordon/agent/state"
)

// StateDir is agent i's state dir under root. Enrolled dirs are kept, so
// a later run (or a later simulator process) reuses the identity.
func StateDir(root string, i int) state.Dir {
	// File keys: thousands of simulated agents must not queue on (or
	// fill) the host's TPM when it has one.
	return state.Dir{Path: filepath.Join(root, fmt.Sprintf("agent-%06d", i)), Keys: keystore.FileKind}
}

// SourceIP is agent i's source address: one per agent, spread over
// 127.0.0.0/8 without .0 and .255 in any octet, so no source address
// runs out of ports and 15 million agents have one each.
func SourceIP(i int) net.IP {
	return net.IPv4(127, byte(1+i/(250*250)%250), byte(1+i/250%250), byte(1+i%250))
}

// EnrollRequest enrolls agents First..First+Count-1 through the real
// enrollment path (the agent's enrollment package against POST /enroll),
// with one multi-use token.
type EnrollRequest struct {
	Server      string // https://host:port of the console listener
	Token       string
	Fingerprint string // the root CA's, pinned
	Root        string // state dirs live under it
	First       int
	Count       int
	Parallel    int // enrollments in flight at once
	Version     string
	FIPS        bool
}

// EnrollResult says how many were enrolled now and how many were
// already enrolled (reused).
type EnrollResult struct {
	Enrolled, Reused int
}

// Enroll enrolls every agent of the range that is not enrolled yet.
func Enroll(ctx context.Context, req EnrollRequest) (EnrollResult, error) {
	var (
		next             atomic.Int64
		enrolled, reused atomic.Int64
		mu               sync.Mutex
		errs             []error
		wg               sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range max(1, req.Parallel) {
		wg.Go(func() {
			for {
				k := int(next.Add(1) - 1)
				if k >= req.Count || ctx.Err() != nil {
					return
				}
				i := req.First + k
				dir := StateDir(req.Root, i)
				if _, err := dir.LoadConfig(); err == nil {
					reused.Add(1)
					continue
				}
				d := NewDevice(i, 0, req.Version)
				_, err := enrollment.Enroll(ctx, enrollment.Request{Server: req.Server, Token: req.Token,
					Fingerprint: req.Fingerprint, State: dir, Facts: d.Facts(), FIPS: req.FIPS})
				if errors.Is(err, enrollment.ErrAlreadyEnrolled) {
					err = nil
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("agent %d: %w", i, err))
					mu.Unlock()
					cancel() // one refusal (an exhausted token) refuses the rest
					return
				}
				enrolled.Add(1)
			}
		})
	}
	wg.Wait()
	return EnrollResult{Enrolled: int(enrolled.Load()), Reused: int(reused.Load())}, errors.Join(errs...)
}
