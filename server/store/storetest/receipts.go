package storetest

import (
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/server/store"
)

func receiptContracts() []contract {
	return []contract{
		{"WipeReceipts", []string{"AddWipeReceipt", "GetWipeReceipt", "DeviceWipeReceipts"}, func(t *testing.T, open Opener) {
			st := open(t)
			ctx := t.Context()
			at := now()
			_, err := st.GetWipeReceipt(ctx, "w1")
			wantErr(t, "no receipt yet", err, store.ErrNotFound)
			first := &store.WipeReceipt{CommandID: "w1", DeviceID: "d1", Status: store.ReceiptVerified, Digest: "ab12",
				CertSerial: "4711", Body: `{"format":"cordon-wipe-receipt/v1"}`, ReceivedAt: at}
			stored, err := st.AddWipeReceipt(ctx, first)
			must(t, err)
			if !stored {
				t.Fatal("the first receipt was not stored")
			}
			// A resent answer's receipt does not replace the first.
			stored, err = st.AddWipeReceipt(ctx, &store.WipeReceipt{CommandID: "w1", DeviceID: "d1", Status: store.ReceiptUnverified,
				Reason: "forged", Digest: "ffff", Body: "{}", ReceivedAt: at.Add(time.Minute)})
			must(t, err)
			if stored {
				t.Fatal("a second receipt for the command was stored")
			}
			got, err := st.GetWipeReceipt(ctx, "w1")
			must(t, err)
			if got.Status != store.ReceiptVerified || got.Digest != "ab12" || got.Body != first.Body || got.CertSerial != "4711" || got.DeviceID != "d1" {
				t.Fatalf("read back %+v", got)
			}
			sameTime(t, "received", got.ReceivedAt, at)
			_, err = st.AddWipeReceipt(ctx, &store.WipeReceipt{CommandID: "w2", DeviceID: "d1", Status: store.ReceiptUnverified,
				Reason: "no chain", Digest: "cd", Body: "{}", ReceivedAt: at.Add(time.Hour)})
			must(t, err)
			_, err = st.AddWipeReceipt(ctx, &store.WipeReceipt{CommandID: "w3", DeviceID: "d2", Status: store.ReceiptVerified,
				Digest: "ef", Body: "{}", ReceivedAt: at})
			must(t, err)
			rs, err := st.DeviceWipeReceipts(ctx, "d1")
			must(t, err)
			sameIDs(t, "d1's receipts, newest first", ids(rs, func(r store.WipeReceipt) string { return r.CommandID }), "w2", "w1")
		}},
	}
}
