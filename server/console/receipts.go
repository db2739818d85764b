package console

import (
	"context"
	"time"

	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/server/store"
)

// ReceiptRecords reads a device's wipe receipts, for the incident and its
// response form.
type ReceiptRecords interface {
	DeviceWipeReceipts(ctx context.Context, deviceID string) ([]store.WipeReceipt, error)
}

// receiptView is one wipe receipt as the pages show it: the facts only
// when it verified, since an unverified receipt is no proof of anything.
type receiptView struct {
	CommandID, Status, Reason, Digest, Serial string
	ReceivedAt                                time.Time
	Verified                                  bool
	R                                         *protocol.WipeReceipt
}

// wipeReceipts are the device's receipts, newest first; none when they
// cannot be read (the page does without them).
func (c *Console) wipeReceipts(ctx context.Context, deviceID string) []receiptView {
	rs, err := c.records.DeviceWipeReceipts(ctx, deviceID)
	if err != nil {
		c.log.Warn("wipe receipts", "device_id", deviceID, "err", err)
		return nil
	}
	out := make([]receiptView, 0, len(rs))
	for _, r := range rs {
		v := receiptView{CommandID: r.CommandID, Status: r.Status, Reason: r.Reason, Digest: r.Digest, Serial: r.CertSerial,
			ReceivedAt: r.ReceivedAt}
		if r.Status == store.ReceiptVerified {
			if p, err := protocol.ParseReceipt([]byte(r.Body)); err == nil {
				v.Verified, v.R = true, p
			} else {
				v.Status, v.Reason = store.ReceiptUnverified, "the stored receipt no longer parses: "+err.Error()
			}
		}
		out = append(out, v)
	}
	return out
}
