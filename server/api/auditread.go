package api

import (
	"strconv"
	"sync"
	"time"
)

// readChains remembers, per caller and filter, where the last page of an
// audit list ended, so the pages of one export (each asking after= the
// last entry it got) make one audit.read entry, not one per page (AU-2).
// Only the server's own answer continues a chain: a caller who sends an
// after= it was not given starts a new, audited read. A short page keeps
// the chain too: a reader that pages until an empty answer would
// otherwise never reach the end, each page bringing its own audit.read.
type readChains struct {
	mu   sync.Mutex
	last map[string]readChain
	now  func() time.Time
}

type readChain struct {
	seq int64
	at  time.Time
}

// chainTTL is how long a chain waits for its next page.
const chainTTL = 10 * time.Minute

// maxChains bounds the memory a flood of distinct filters can take; past
// it every read is recorded on its own, which is only more audit.
const maxChains = 1000

func newReadChains() *readChains {
	return &readChains{last: map[string]readChain{}, now: time.Now}
}

func chainKey(actor, action, target string, limit int) string {
	return actor + "\x00" + action + "\x00" + target + "\x00" + strconv.Itoa(limit)
}

// continues reports whether a read starting after seq continues a chain
// of key (so it is not recorded again).
func (c *readChains) continues(key string, after int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch, ok := c.last[key]
	return ok && after > 0 && ch.seq == after && c.now().Sub(ch.at) < chainTTL
}

// ended records where a page of key ended.
func (c *readChains) ended(key string, lastSeq int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if _, ok := c.last[key]; !ok && len(c.last) >= maxChains {
		for k, ch := range c.last {
			if now.Sub(ch.at) >= chainTTL {
				delete(c.last, k)
			}
		}
		if len(c.last) >= maxChains {
			return
		}
	}
	c.last[key] = readChain{seq: lastSeq, at: now}
}
