// Package fdlimit raises the process's open-file limit: every connected
// agent holds one descriptor, so the limit is the ceiling on the agents
// one server process can hold.
package fdlimit

// Limit is the open-file limit in force.
type Limit struct {
	Soft, Hard uint64
}
