package server

import (
	"context"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/store"
)

// TestCheckpointsAtStartAndShutdown: a start signs a checkpoint, and the
// one signed at shutdown covers the server's last entry (gateway.stopped),
// so nothing the server wrote is left outside a checkpoint.
func TestCheckpointsAtStartAndShutdown(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, err := New(ctx, WithDataDir(dir), WithListen("127.0.0.1:0"), WithAgentListen("127.0.0.1:0"), WithFIPS(false))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	cps, err := s.AuditAnchor.FileCheckpoints()
	if err != nil || len(cps) != 1 {
		t.Fatalf("checkpoints after start: %v %v", cps, err)
	}
	anchor := s.AuditAnchor
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	cps, err = anchor.FileCheckpoints()
	if err != nil || len(cps) != 2 {
		t.Fatalf("checkpoints after shutdown: %v %v", cps, err)
	}
	st, err := store.Open(ctx, dir, "")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	head, hash, _ := st.AuditHeadSeq(ctx)
	if last := cps[len(cps)-1]; last.Seq != head || last.Hash != hash {
		t.Fatalf("the shutdown checkpoint is of entry %d, the head is %d", last.Seq, head)
	}
	l := audit.New(st, nil)
	if _, err := audit.NewAnchor(l, st, dir, false); err != nil {
		t.Fatal(err)
	}
	if res, err := l.Verify(ctx); err != nil || !res.OK || res.Checkpoint == nil || res.Checkpoint.Seq != head {
		t.Fatalf("verify: %+v %v", res, err)
	}
}
