package actions

import (
	"fmt"
	"time"

	"github.com/cordon-mdm/cordon/internal/input"
	"github.com/cordon-mdm/cordon/protocol"
)

// Bounds of what a receipt lists, the protocol's (WipeReceipt.Check).
const (
	receiptVolumes = 32
	receiptPaths   = 256
	receiptText    = 1024
)

// receiptFacts gathers a wipe's receipt as it runs, each step timed by the
// device's clock when it finished. What it could not state (a header it
// could not read, a path it cannot carry) is a gap: the receipt leaves it
// out, and a receipt with gaps is not complete.
type receiptFacts struct {
	r    protocol.WipeReceipt
	gaps []string
}

func newReceipt() *receiptFacts {
	return &receiptFacts{r: protocol.WipeReceipt{Format: protocol.ReceiptFormat, Clock: protocol.ReceiptClock,
		StartedAt: time.Now().UTC(), Volumes: []protocol.ErasedVolume{}, CJIPaths: []protocol.DeletedPath{}}}
}

// volume records an erased volume from its header read before and after.
func (f *receiptFacts) volume(dev string, before, after headerFacts, err error) {
	switch {
	case err != nil:
		f.gaps = append(f.gaps, fmt.Sprintf("%s: %v", dev, err))
		return
	case before.UUID != after.UUID || before.Version != after.Version:
		f.gaps = append(f.gaps, fmt.Sprintf("%s: the header read after the erase is another volume's", dev))
		return
	case len(f.r.Volumes) == receiptVolumes || input.Text("device", dev, receiptText) != nil:
		f.gaps = append(f.gaps, dev+": beyond what a receipt carries")
		return
	}
	f.r.Volumes = append(f.r.Volumes, protocol.ErasedVolume{Device: dev, UUID: before.UUID, LUKSVersion: before.Version,
		HeaderBytes: before.Bytes, HeaderSHA256Before: before.SHA256, HeaderSHA256After: after.SHA256,
		KeySlotsBefore: before.KeySlots, KeySlotsAfter: after.KeySlots, ErasedAt: time.Now().UTC()})
}

// deleted records a CJI path removed with files files in it.
func (f *receiptFacts) deleted(path string, files int) {
	if len(f.r.CJIPaths) == receiptPaths || input.Text("path", path, receiptText) != nil {
		f.gaps = append(f.gaps, input.Printable(input.Clip(path, 128))+": beyond what a receipt carries")
		return
	}
	f.r.CJIPaths = append(f.r.CJIPaths, protocol.DeletedPath{Path: path, Files: files, DeletedAt: time.Now().UTC()})
}

// attach gives out the receipt when it states at least one erased volume;
// its gaps go in the detail.
func (f *receiptFacts) attach(out *Outcome) {
	if len(f.gaps) > 0 {
		out.Detail["receipt_gaps"] = capDetail(f.gaps, "; ")
	}
	if len(f.r.Volumes) == 0 {
		return
	}
	r := f.r
	r.Complete = out.Done && len(f.gaps) == 0
	out.Receipt = &r
}
