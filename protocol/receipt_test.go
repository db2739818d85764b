package protocol

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func sampleReceipt() WipeReceipt {
	at := time.Date(2026, 12, 1, 23, 0, 0, 123456789, time.UTC)
	return WipeReceipt{Format: ReceiptFormat, DeviceID: "d1", CommandID: "c1", Complete: true, Clock: ReceiptClock,
		StartedAt: at, SignedAt: at.Add(2 * time.Second), Algorithm: ReceiptAlgorithm,
		Volumes: []ErasedVolume{{Device: "/dev/nvme0n1p3", UUID: "3b5c1a2e-9d8f-4c6b-8a7e-6d5c4b3a2918", LUKSVersion: 2,
			HeaderBytes: 16 << 20, HeaderSHA256Before: strings.Repeat("ab", 32), HeaderSHA256After: strings.Repeat("cd", 32),
			KeySlotsBefore: 1, KeySlotsAfter: 0, ErasedAt: at.Add(time.Second)}},
		CJIPaths: []DeletedPath{{Path: "/srv/cji <&>", Files: 3, DeletedAt: at.Add(time.Second)}},
		Chain:    [][]byte{{0x30, 0x82, 0x01}}, Signature: []byte{0x30, 0x45, 0x02}}
}

func TestWipeReceiptRoundTripsThroughTheResultFrame(t *testing.T) {
	r := sampleReceipt()
	frame, err := Encode(TypeCommandResult, "f1", time.Now(), CommandResult{Ref: "c1", Status: ResultDone, Receipt: &r})
	if err != nil {
		t.Fatal(err)
	}
	env, err := Decode(frame)
	if err != nil {
		t.Fatal(err)
	}
	var got CommandResult
	if err := DecodeBody(env, &got); err != nil || got.Receipt == nil {
		t.Fatalf("decode: %+v, %v", got, err)
	}
	want, _ := r.Canonical()
	again, _ := got.Receipt.Canonical()
	if !bytes.Equal(want, again) {
		t.Fatalf("the receipt changed on the wire:\n%s\n%s", want, again)
	}
	// The canonical form ends with the signature; SignedBytes is it
	// without that member, which is how a verifier in any language finds
	// the signed bytes.
	signed, _ := r.SignedBytes()
	if !bytes.HasPrefix(want, signed[:len(signed)-1]) || !bytes.HasSuffix(want, []byte(`"}`)) ||
		!bytes.Contains(want[len(signed)-1:], []byte(`,"signature":"`)) {
		t.Fatalf("signature is not the last member:\n%s\n%s", want, signed)
	}
	if p, err := ParseReceipt(append(want, '\n')); err != nil || p.CommandID != "c1" {
		t.Fatalf("parse its own canonical form: %v", err)
	}
}

func TestWipeReceiptRefusals(t *testing.T) {
	for name, mutate := range map[string]func(*WipeReceipt){
		"wrong format":      func(r *WipeReceipt) { r.Format = "v0" },
		"server clock":      func(r *WipeReceipt) { r.Clock = "server" },
		"rsa":               func(r *WipeReceipt) { r.Algorithm = "RSA-PSS" },
		"no device":         func(r *WipeReceipt) { r.DeviceID = "" },
		"no chain":          func(r *WipeReceipt) { r.Chain = nil },
		"long chain":        func(r *WipeReceipt) { r.Chain = make([][]byte, 5) },
		"uppercase hash":    func(r *WipeReceipt) { r.Volumes[0].HeaderSHA256After = strings.Repeat("CD", 32) },
		"short hash":        func(r *WipeReceipt) { r.Volumes[0].HeaderSHA256Before = "ab" },
		"luks3":             func(r *WipeReceipt) { r.Volumes[0].LUKSVersion = 3 },
		"no uuid":           func(r *WipeReceipt) { r.Volumes[0].UUID = "" },
		"newline in path":   func(r *WipeReceipt) { r.CJIPaths[0].Path = "/srv\n/x" },
		"too many volumes":  func(r *WipeReceipt) { r.Volumes = make([]ErasedVolume, 33) },
		"no started_at":     func(r *WipeReceipt) { r.StartedAt = time.Time{} },
		"negative slots":    func(r *WipeReceipt) { r.Volumes[0].KeySlotsBefore = -1 },
		"huge signature":    func(r *WipeReceipt) { r.Signature = make([]byte, 200) },
		"empty certificate": func(r *WipeReceipt) { r.Chain = [][]byte{{}} },
	} {
		r := sampleReceipt()
		mutate(&r)
		if err := r.Check(); !errors.Is(err, ErrBadReceipt) && err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	r := sampleReceipt()
	res := CommandResult{Ref: "c2", Status: ResultDone, Receipt: &r}
	if err := res.Check(); !errors.Is(err, ErrBadReceipt) {
		t.Errorf("a receipt for another command in the answer: %v", err)
	}
	can, _ := r.Canonical()
	for name, data := range map[string][]byte{
		"reindented":       bytes.ReplaceAll(can, []byte(`,"`), []byte(`, "`)),
		"member case":      bytes.Replace(can, []byte(`"device_id"`), []byte(`"Device_id"`), 1),
		"unknown member":   bytes.Replace(can, []byte(`{"format"`), []byte(`{"extra":1,"format"`), 1),
		"two newlines":     append(append([]byte{}, can...), '\n', '\n'),
		"escaped the same": bytes.Replace(can, []byte(`\u003c`), []byte(`<`), 1),
	} {
		if _, err := ParseReceipt(data); !errors.Is(err, ErrBadReceipt) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// FuzzParseReceipt: nothing panics, and whatever parses is canonical and
// passes its own check.
func FuzzParseReceipt(f *testing.F) {
	r := sampleReceipt()
	can, _ := r.Canonical()
	f.Add(can)
	f.Add([]byte(`{"format":"cordon-wipe-receipt/v1"}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := ParseReceipt(data)
		if err != nil {
			return
		}
		if err := got.Check(); err != nil {
			t.Fatalf("parsed receipt fails its check: %v", err)
		}
		again, err := got.Canonical()
		if err != nil || !bytes.Equal(again, bytes.TrimSuffix(data, []byte("\n"))) {
			t.Fatalf("parsed receipt is not its input: %v", err)
		}
	})
}
