package gateway

import (
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/store"
)

// realGateway is a gateway on a real SQLite store and audit trail, its
// writes committed through the group-commit writer.
func realGateway(t *testing.T) (*Gateway, *store.Store, *audit.Log) {
	t.Helper()
	st, err := store.Open(t.Context(), t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.DB().Create(&store.Device{ID: testDevice, Status: store.StatusActive, EnrolledAt: time.Now().UTC()}).Error; err != nil {
		t.Fatal(err)
	}
	au := audit.New(st, nil)
	g := New(st, nil, au, WithWriter(st.NewWriter()))
	t.Cleanup(func() { g.Close() })
	return g, st, au
}

// A connection's writes go through the writer with their audit entries:
// online, the hello's facts, a report acknowledged only once stored, the
// disconnect, and an unbroken chain of their entries.
func TestConnectionWritesCommitWithTheirEntries(t *testing.T) {
	g, st, au := realGateway(t)
	p := dial(t, g)
	p.hello(protocol.CurrentCapabilityVersion, protocol.AgentCapabilities...)
	pos := posture(time.Now())
	pos.Lock = &protocol.LockState{State: "locked"}
	p.send(protocol.TypePosture, "r1", pos)
	p.ack("r1")
	// Acknowledged means stored: read at once, no waiting.
	if hist, err := st.PostureHistory(t.Context(), testDevice, 5); err != nil || len(hist) != 1 || hist[0].ReportID != "r1" {
		t.Fatalf("after the ack: history %+v, %v", hist, err)
	}
	d, err := st.GetDevice(t.Context(), testDevice)
	if err != nil || !d.Online || d.Hostname != "probe" || d.LastAddr != "127.0.0.1" {
		t.Fatalf("device %+v, %v", d, err)
	}
	p.ws.Close()
	waitFor(t, "the disconnect recorded", func() bool {
		es, _ := st.ListAudit(t.Context(), store.AuditQuery{Action: audit.DeviceDisconnected})
		return len(es) == 1
	})
	if d, _ := st.GetDevice(t.Context(), testDevice); d.Online {
		t.Fatal("device still online after its disconnect entry")
	}
	if res, err := au.Verify(t.Context()); err != nil || !res.OK {
		t.Fatalf("chain %+v, %v", res, err)
	}
}

// The device is marked online only with its device.connected entry: when
// the trail cannot be written, neither is (AU-5).
func TestConnectIsNotRecordedWithoutItsEntry(t *testing.T) {
	g, st, _ := realGateway(t)
	if err := st.DB().Exec("CREATE TRIGGER ro BEFORE INSERT ON audit_entries BEGIN SELECT RAISE(ABORT, 'read-only'); END").Error; err != nil {
		t.Fatal(err)
	}
	p := dial(t, g)
	// The hello is committed after the connect (one connection's writes
	// are in order): its ack (taken by hello) means the connect's commit
	// is over.
	p.hello(protocol.CurrentCapabilityVersion, protocol.AgentCapabilities...)
	d, err := st.GetDevice(t.Context(), testDevice)
	if err != nil || d.Online || d.LastSeen != nil {
		t.Fatalf("marked online without its audit entry: %+v, %v", d, err)
	}
	if d.Hostname != "probe" {
		t.Fatalf("the hello, which writes no entry, was not recorded: %+v", d)
	}
}
