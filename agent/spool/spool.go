// Package spool is the agent's bounded on-disk queue of frames the server
// has not yet acknowledged. A frame is on disk (synced) before it is sent
// and leaves only when the server's ack says it was committed, so neither
// an agent crash nor a server crash loses an unacknowledged report.
package spool

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/cordon-mdm/cordon/internal/atomicfile"
)

// Item is one spooled frame.
type Item struct {
	Seq   uint64
	ID    string
	Frame []byte
}

// Spool is a directory of "<seq>-<id>.frame" files.
type Spool struct {
	dir     string
	max     int
	mu      sync.Mutex
	next    uint64
	index   map[string]uint64 // id → seq
	dropped int
}

// Open opens (creating) the spool in dir, keeping at most max frames.
func Open(dir string, limit int) (*Spool, error) {
	if limit < 1 {
		return nil, errors.New("spool size must be at least 1")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	s := &Spool{dir: dir, max: limit, next: 1, index: map[string]uint64{}}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		seq, id, ok := parseName(e.Name())
		if !ok {
			continue // temporary files of an interrupted write
		}
		s.index[id] = seq
		s.next = max(s.next, seq+1)
	}
	return s, nil
}

func name(seq uint64, id string) string { return fmt.Sprintf("%020d-%s.frame", seq, id) }

func parseName(n string) (uint64, string, bool) {
	base, ok := strings.CutSuffix(n, ".frame")
	if !ok {
		return 0, "", false
	}
	seqS, id, ok := strings.Cut(base, "-")
	if !ok || id == "" {
		return 0, "", false
	}
	seq, err := strconv.ParseUint(seqS, 10, 64)
	return seq, id, err == nil
}

// validID keeps ids safe as file-name parts.
func validID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

// ErrFull is returned by Add when the spool holds its limit.
var ErrFull = errors.New("spool full")

// Add stores a frame durably like Put but never drops one: when the spool
// is full it refuses. For frames a person filed (incident reports), where
// losing the oldest would be worse than saying no.
func (s *Spool) Add(id string, frame []byte) error { return s.put(id, frame, false) }

// Has reports whether the frame with id is spooled.
func (s *Spool) Has(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.index[id]
	return ok
}

// Put stores a frame durably. When the spool is full the oldest frame is
// dropped: reports are snapshots, and the newest says most.
func (s *Spool) Put(id string, frame []byte) error { return s.put(id, frame, true) }

func (s *Spool) put(id string, frame []byte, drop bool) error {
	if !validID(id) {
		return fmt.Errorf("spool: invalid id %q", id)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.index[id]; dup {
		return nil
	}
	if !drop && len(s.index) >= s.max {
		return fmt.Errorf("%w: %d unsent frames", ErrFull, s.max)
	}
	seq := s.next
	if err := atomicfile.Write(filepath.Join(s.dir, name(seq, id)), frame, 0o600); err != nil {
		return err
	}
	s.next++
	s.index[id] = seq
	for len(s.index) > s.max {
		oldID, oldSeq := s.oldestLocked()
		if err := os.Remove(filepath.Join(s.dir, name(oldSeq, oldID))); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		delete(s.index, oldID)
		s.dropped++
	}
	return nil
}

func (s *Spool) oldestLocked() (string, uint64) {
	var (
		id  string
		low uint64 = ^uint64(0)
	)
	for k, v := range s.index {
		if v < low {
			id, low = k, v
		}
	}
	return id, low
}

// Remove deletes the frame with id (acknowledged); unknown ids are ignored.
func (s *Spool) Remove(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	seq, ok := s.index[id]
	if !ok {
		return nil
	}
	if err := os.Remove(filepath.Join(s.dir, name(seq, id))); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	delete(s.index, id)
	return atomicfile.SyncDir(s.dir)
}

// Pending returns every spooled frame, oldest first.
func (s *Spool) Pending() ([]Item, error) {
	s.mu.Lock()
	type ent struct {
		id  string
		seq uint64
	}
	ents := make([]ent, 0, len(s.index))
	for id, seq := range s.index {
		ents = append(ents, ent{id, seq})
	}
	s.mu.Unlock()
	sort.Slice(ents, func(i, j int) bool { return ents[i].seq < ents[j].seq })
	out := make([]Item, 0, len(ents))
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(s.dir, name(e.seq, e.id)))
		if errors.Is(err, os.ErrNotExist) {
			continue // acknowledged meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, Item{Seq: e.seq, ID: e.id, Frame: b})
	}
	return out, nil
}

// Len is the number of spooled frames.
func (s *Spool) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.index)
}

// Dropped is how many frames were discarded because the spool was full.
func (s *Spool) Dropped() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped
}
