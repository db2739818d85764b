package keylock

import (
	"sync"
	"testing"
)

func TestOneKeyIsSerialised(t *testing.T) {
	var s Striped
	var wg sync.WaitGroup
	inside, most := 0, 0
	var mu sync.Mutex
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			unlock := s.Lock("user-1")
			defer unlock()
			mu.Lock()
			inside++
			most = max(most, inside)
			mu.Unlock()
			mu.Lock()
			inside--
			mu.Unlock()
		}()
	}
	wg.Wait()
	if most != 1 {
		t.Fatalf("%d holders of one key at once", most)
	}
}
