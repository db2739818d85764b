// Package keylock serialises work per key (a device, a user) with a fixed
// set of mutexes, so memory does not grow with the number of keys. Two
// keys may share a mutex; that only costs them some waiting.
package keylock

import (
	"hash/fnv"
	"sync"
)

// Striped is 64 mutexes chosen by key. The zero value is ready to use.
type Striped struct{ m [64]sync.Mutex }

// Lock locks key's mutex and returns its unlock.
func (s *Striped) Lock(key string) func() {
	h := fnv.New32a()
	h.Write([]byte(key))
	m := &s.m[h.Sum32()%uint32(len(s.m))]
	m.Lock()
	return m.Unlock
}
