package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/cordon-mdm/cordon/agent/state"
	"github.com/cordon-mdm/cordon/protocol"
)

// capture collects posture and, when forced or changed since the last
// capture, spools it durably and returns the frame to send. It also runs
// while the agent is disconnected, so a lock change made offline reaches
// the server's timeline with the time it happened.
func (a *Agent) capture(ctx context.Context, force bool) (id string, frame []byte, err error) {
	p, err := a.collector.Collect(ctx)
	if err != nil {
		a.log.Warn("posture collection failed", "err", err)
		return "", nil, nil
	}
	// Where the key lives is the agent's to say, not the OS collector's.
	p.Identity = &protocol.Identity{KeyStorage: a.cfg.KeyStoreKind()}
	fp := fingerprint(p)
	if !force && bytes.Equal(fp, a.last) {
		return "", nil, nil
	}
	id = uuid.NewString()
	if frame, err = protocol.Encode(protocol.TypePosture, id, time.Now(), p); err != nil {
		return "", nil, err
	}
	if err := a.spool.Put(id, frame); err != nil {
		return "", nil, fmt.Errorf("spool report: %w", err)
	}
	a.last = fp
	a.setStatus(func(st *state.Status) { st.LastPosture = &p; st.Spooled = a.spool.Len() })
	return id, frame, nil
}

// fingerprint is what "changed" means: everything but the collection
// time and the idle counters, which move on every reading and would turn
// each poll into a report.
func fingerprint(p protocol.Posture) []byte {
	p.CollectedAt = time.Time{}
	if p.Lock != nil {
		l := *p.Lock
		l.IdleSeconds, l.IdleSince = nil, nil
		p.Lock = &l
	}
	b, _ := json.Marshal(p)
	return b
}
