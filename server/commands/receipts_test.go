package commands

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/receipt"
	"github.com/cordon-mdm/cordon/receipt/receipttest"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/store"
)

const wipedDevice = "4e3a9c2b-1d0f-4e8a-9b7c-6d5e4f3a2b1c"

// TestWipeReceiptsAreJudgedAndAudited: a wipe's answer carries a receipt;
// the server keeps every one beside its command, verified only when the
// chain leads to its CA and the leaf is one it issued to that device,
// and writes the stored body's digest in the trail, in one transaction.
func TestWipeReceiptsAreJudgedAndAudited(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	st.DB().Create(&store.Device{ID: wipedDevice, Name: "car-7", Status: "active", EnrolledAt: time.Now().UTC()})
	ca, other := receipttest.New(t), receipttest.New(t)
	_, cmdKey, _ := ed25519.GenerateKey(nil)
	s := New(st, audit.New(st, nil), cmdKey, nobody{}, noRevoke{}, WithReceiptRoot(ca.Root, st), WithWipeProtection(100, time.Minute))

	devKey := receipttest.Key(t)
	issued := ca.Device(t, wipedDevice, devKey.Public())
	if err := st.AddCertificate(ctx, store.CertificateFor(wipedDevice, issued[0])); err != nil {
		t.Fatal(err)
	}
	answer := func(key *ecdsa.PrivateKey, chain []*x509.Certificate, tamper func(*protocol.WipeReceipt)) (string, *store.WipeReceipt) {
		t.Helper()
		c, err := s.Issue(ctx, Request{DeviceID: wipedDevice, Kind: protocol.CommandWipe, Confirm: "car-7", Actor: "user:laso@pd",
			Role: "laso", Source: "test"})
		if err != nil {
			t.Fatal(err)
		}
		at := time.Now().UTC()
		r := &protocol.WipeReceipt{Format: protocol.ReceiptFormat, DeviceID: wipedDevice, CommandID: c.ID, Complete: true,
			Clock: protocol.ReceiptClock, StartedAt: at, SignedAt: at,
			Volumes: []protocol.ErasedVolume{{Device: "/dev/vda3", UUID: "u-1", LUKSVersion: 2, HeaderBytes: 1 << 24,
				HeaderSHA256Before: strings.Repeat("0a", 32), HeaderSHA256After: strings.Repeat("0b", 32), KeySlotsBefore: 1, ErasedAt: at}},
			CJIPaths: []protocol.DeletedPath{}}
		if err := receipt.Sign(r, key, chain); err != nil {
			t.Fatal(err)
		}
		if tamper != nil {
			tamper(r)
		}
		if _, err := s.Result(ctx, wipedDevice, "10.0.0.7", protocol.CommandResult{Ref: c.ID, Status: protocol.ResultDone, Receipt: r}); err != nil {
			t.Fatal(err)
		}
		got, err := st.GetWipeReceipt(ctx, c.ID)
		if err != nil {
			t.Fatalf("receipt not stored: %v", err)
		}
		cmd, _ := st.GetCommand(ctx, c.ID)
		if strings.Contains(cmd.Result, "signature") {
			t.Errorf("the receipt is kept in the command's result too: %s", cmd.Result)
		}
		return c.ID, got
	}

	id, good := answer(devKey, issued, nil)
	if good.Status != store.ReceiptVerified || good.Reason != "" || good.CertSerial != issued[0].SerialNumber.String() {
		t.Fatalf("a good receipt: %+v", good)
	}
	if _, err := protocol.ParseReceipt([]byte(good.Body)); err != nil || receipt.Digest([]byte(good.Body)) != good.Digest {
		t.Fatalf("stored body is not the canonical receipt its digest names: %v", err)
	}
	es, err := st.ListAudit(ctx, store.AuditQuery{Action: ActionReceipt})
	if err != nil || len(es) != 1 || !strings.Contains(es[0].Details, good.Digest) || es[0].Target != "command:"+id {
		t.Fatalf("audit entries %+v, %v", es, err)
	}

	otherKey := receipttest.Key(t)
	for name, c := range map[string]struct {
		key    *ecdsa.PrivateKey
		chain  []*x509.Certificate
		tamper func(*protocol.WipeReceipt)
		reason string
	}{
		"changed after signing": {devKey, issued, func(r *protocol.WipeReceipt) { r.Volumes[0].KeySlotsAfter = 0; r.Volumes[0].UUID = "u-2" },
			"signature does not verify"},
		"another CA": {otherKey, other.Device(t, wipedDevice, otherKey.Public()), nil, "does not chain"},
		// Certified by this CA but never recorded as issued: a CA key
		// misused outside the server.
		"never issued": {otherKey, ca.Device(t, wipedDevice, otherKey.Public()), nil, "never issued by this server"},
		"another device's certificate": {otherKey, ca.Device(t, "11111111-2222-4333-8444-555555555555", otherKey.Public()), nil,
			"not the receipt's"},
	} {
		_, got := answer(c.key, c.chain, c.tamper)
		if got.Status != store.ReceiptUnverified || !strings.Contains(got.Reason, c.reason) {
			t.Errorf("%s: %s (%q), want unverified for %q", name, got.Status, got.Reason, c.reason)
		}
	}
	es, _ = st.ListAudit(ctx, store.AuditQuery{Action: ActionReceipt})
	if len(es) != 5 || es[len(es)-1].Outcome != audit.Failure {
		t.Fatalf("%d receipt entries, last %+v", len(es), es[len(es)-1])
	}
}
