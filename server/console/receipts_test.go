package console

import (
	"strings"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/protocol"
)

// TestAnUnverifiedReceiptIsNeverShownAsProof: the block names an
// unverified receipt as not proof and shows none of its claims; a
// verified one shows its volumes, paths and device-clock times.
func TestAnUnverifiedReceiptIsNeverShownAsProof(t *testing.T) {
	at := time.Date(2026, 12, 1, 23, 0, 0, 0, time.UTC)
	r := &protocol.WipeReceipt{Complete: true, StartedAt: at, SignedAt: at,
		Volumes:  []protocol.ErasedVolume{{Device: "/dev/vda3", UUID: "uuid-claimed", KeySlotsBefore: 1, ErasedAt: at}},
		CJIPaths: []protocol.DeletedPath{{Path: "/srv/cji", Files: 2, DeletedAt: at}}}
	render := func(v receiptView) string {
		var b strings.Builder
		if err := parsePages()["incident"].ExecuteTemplate(&b, "receipts", []receiptView{v}); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	bad := render(receiptView{CommandID: "c1", Status: "unverified", Reason: "the signature does not verify", Digest: "ab12", R: nil})
	if !strings.Contains(bad, "not proof") || !strings.Contains(bad, "the signature does not verify") || strings.Contains(bad, "uuid-claimed") ||
		strings.Contains(bad, "receipt-verified") {
		t.Fatalf("unverified block:\n%s", bad)
	}
	good := render(receiptView{CommandID: "c2", Status: "verified", Verified: true, Digest: "cd34", Serial: "4711", R: r})
	for _, want := range []string{"receipt-verified", "uuid-claimed", "1 → 0", "/srv/cji", "device's clock", "cd34", "complete"} {
		if !strings.Contains(good, want) {
			t.Errorf("verified block lacks %q:\n%s", want, good)
		}
	}
}
