package api

import (
	"testing"
	"time"
)

func TestReadChains(t *testing.T) {
	now := time.Unix(1e9, 0)
	c := newReadChains()
	c.now = func() time.Time { return now }
	k := chainKey("apikey:aud", "", "", 1000)
	if c.continues(k, 0) {
		t.Fatal("a first read continued a chain")
	}
	c.ended(k, 1000)
	if !c.continues(k, 1000) {
		t.Fatal("the next page of a full one was recorded again")
	}
	if c.continues(k, 999) || c.continues(chainKey("apikey:aud", "user.disabled", "", 1000), 1000) ||
		c.continues(chainKey("apikey:other", "", "", 1000), 1000) {
		t.Fatal("another start, filter or caller continued the chain")
	}
	now = now.Add(chainTTL)
	if c.continues(k, 1000) {
		t.Fatal("a stale chain continued")
	}
	c.ended(k, 2000)
	c.ended(k, 2001)
	if !c.continues(k, 2001) || c.continues(k, 2000) {
		t.Fatal("a chain does not follow its last page")
	}
}
