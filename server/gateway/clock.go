package gateway

import (
	"time"

	"github.com/cordon-mdm/cordon/protocol"
)

// trusted is what the server makes of a time a device gave.
type trusted struct {
	// At is the time history is ordered by.
	At time.Time
	// Skewed: the device's time was not believable and At is the
	// receive time; SkewSeconds is device time − receive time, in
	// seconds (not a Duration, which saturates at 292 years and so could
	// not say how far off the year 9999 is).
	Skewed      bool
	SkewSeconds int64
}

// trust is the clock rule. A device's clock is untrusted input: a time
// more than protocol.MaxClockSkew ahead of the frame's receipt, or before
// the device was enrolled (less the same tolerance, since the server's
// and the device's clocks are compared), is not believed, and the report
// is kept at its receive time, flagged. A past time after enrollment is
// believed: that is what the agent's offline spool delivers. No report
// moves ahead of its own receipt, so a clock a little fast (within the
// tolerance) is held to the receive time without being flagged.
//
// A clock running behind cannot be told from a spooled report this way;
// enrollment bounds how far back it can write.
func trust(deviceAt, received, enrolled time.Time) trusted {
	skew := deviceAt.Sub(received)
	off := deviceAt.Unix() - received.Unix()
	switch {
	case skew > protocol.MaxClockSkew:
		return trusted{At: received, Skewed: true, SkewSeconds: off}
	case !enrolled.IsZero() && deviceAt.Before(enrolled.Add(-protocol.MaxClockSkew)):
		return trusted{At: received, Skewed: true, SkewSeconds: off}
	case skew > 0:
		return trusted{At: received}
	}
	return trusted{At: deviceAt}
}

// clockAhead is how far at least a device's clock runs ahead of the
// server's, judged by a frame's own send time (the envelope's ts) against
// its receipt, or zero within protocol.MaxClockSkew. A frame sent late
// from the spool only looks slower, never faster, so a positive answer
// is a lower bound on the error, safe to correct the device's other
// times of that frame by.
func clockAhead(sent, received time.Time) time.Duration {
	if d := sent.Sub(received); d > protocol.MaxClockSkew {
		return d
	}
	return 0
}
