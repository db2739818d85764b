package receipt_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/receipt"
	"github.com/cordon-mdm/cordon/receipt/receipttest"
)

const device = "6f1c2d3e-4a5b-4c6d-8e7f-8091a2b3c4d5"

func unsigned() protocol.WipeReceipt {
	at := time.Now().UTC().Add(-time.Minute).Truncate(time.Millisecond)
	return protocol.WipeReceipt{Format: protocol.ReceiptFormat, DeviceID: device, CommandID: "c-42", Complete: true,
		Clock: protocol.ReceiptClock, StartedAt: at, SignedAt: at.Add(3 * time.Second),
		Volumes: []protocol.ErasedVolume{{Device: "/var/lib/data.img", UUID: "0f5e0c1d-aaaa-bbbb-cccc-123456789abc", LUKSVersion: 2,
			HeaderBytes: 16 << 20, HeaderSHA256Before: strings.Repeat("1a", 32), HeaderSHA256After: strings.Repeat("2b", 32),
			KeySlotsBefore: 2, ErasedAt: at.Add(time.Second)}},
		CJIPaths: []protocol.DeletedPath{{Path: "/srv/cji", Files: 4, DeletedAt: at.Add(2 * time.Second)}}}
}

// signed is a receipt for device signed by a key the CA certified for it,
// and its file.
func signed(t *testing.T, ca *receipttest.CA, deviceID string) (*protocol.WipeReceipt, []byte) {
	t.Helper()
	k := receipttest.Key(t)
	r := unsigned()
	if err := receipt.Sign(&r, k, ca.Device(t, deviceID, k.Public())); err != nil {
		t.Fatal(err)
	}
	file, err := r.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	return &r, file
}

func TestAReceiptSignedByACertifiedDeviceKeyVerifies(t *testing.T) {
	ca := receipttest.New(t)
	r, file := signed(t, ca, device)
	v, err := receipt.Verify(r, receipt.Options{Roots: ca.Roots(), DeviceID: device})
	if err != nil {
		t.Fatal(err)
	}
	if v.DeviceID != device || v.CommandID != "c-42" || v.Serial == "" || v.Digest != receipt.Digest(file) || len(v.Digest) != 64 {
		t.Fatalf("verified %+v", v)
	}
	got, v2, err := receipt.VerifyFile(append(file, '\n'), receipt.Options{Roots: ca.Roots()})
	if err != nil || got.Volumes[0].UUID != r.Volumes[0].UUID || v2.Digest != v.Digest {
		t.Fatalf("the file: %+v, %v", v2, err)
	}
}

// TestOneByteChangedAnywhereDoesNotVerify flips each byte of a receipt
// file in turn, in the body, the chain and the signature alike.
func TestOneByteChangedAnywhereDoesNotVerify(t *testing.T) {
	ca := receipttest.New(t)
	_, file := signed(t, ca, device)
	opts := receipt.Options{Roots: ca.Roots()}
	for i := range file {
		for _, flip := range []byte{0x01, 0x20} {
			bad := append([]byte(nil), file...)
			bad[i] ^= flip
			if _, _, err := receipt.VerifyFile(bad, opts); !errors.Is(err, receipt.ErrUnverified) {
				t.Fatalf("byte %d (%q) ^ %#x: %v", i, file[i], flip, err)
			}
		}
	}
}

func TestAChainFromAnotherCADoesNotVerify(t *testing.T) {
	ours, theirs := receipttest.New(t), receipttest.New(t)
	r, _ := signed(t, theirs, device)
	_, err := receipt.Verify(r, receipt.Options{Roots: ours.Roots()})
	if !errors.Is(err, receipt.ErrUnverified) || !strings.Contains(err.Error(), "does not chain to the Cordon CA") {
		t.Fatalf("another CA's device: %v", err)
	}
}

func TestAReceiptForAnotherDeviceDoesNotVerify(t *testing.T) {
	ca := receipttest.New(t)
	// The certificate is for another device than the receipt names.
	k := receipttest.Key(t)
	r := unsigned()
	if err := receipt.Sign(&r, k, ca.Device(t, "99999999-0000-4000-8000-000000000000", k.Public())); err != nil {
		t.Fatal(err)
	}
	if _, err := receipt.Verify(&r, receipt.Options{Roots: ca.Roots()}); !errors.Is(err, receipt.ErrUnverified) ||
		!strings.Contains(err.Error(), "not the receipt's") {
		t.Fatalf("certificate of another device: %v", err)
	}
	// A good receipt, but not for the device the server expected.
	good, _ := signed(t, ca, device)
	if _, err := receipt.Verify(good, receipt.Options{Roots: ca.Roots(), DeviceID: "someone-else"}); !errors.Is(err, receipt.ErrUnverified) {
		t.Fatalf("receipt for another device than expected: %v", err)
	}
}

func TestSignRefusesAKeyTheChainDoesNotCertify(t *testing.T) {
	ca := receipttest.New(t)
	k, other := receipttest.Key(t), receipttest.Key(t)
	r := unsigned()
	if err := receipt.Sign(&r, k, ca.Device(t, device, other.Public())); err == nil {
		t.Fatal("signed with a key the leaf is not for")
	}
	// Signed, then the chain swapped for another key's certificate.
	if err := receipt.Sign(&r, k, ca.Device(t, device, k.Public())); err != nil {
		t.Fatal(err)
	}
	r.Chain[0] = ca.Device(t, device, other.Public())[0].Raw
	if _, err := receipt.Verify(&r, receipt.Options{Roots: ca.Roots()}); !errors.Is(err, receipt.ErrUnverified) {
		t.Fatalf("chain swapped after signing: %v", err)
	}
	// Outside the certificate's validity at the time asked.
	r2, _ := signed(t, ca, device)
	if _, err := receipt.Verify(r2, receipt.Options{Roots: ca.Roots(), At: time.Now().Add(48 * time.Hour)}); !errors.Is(err, receipt.ErrUnverified) {
		t.Fatalf("verified at a time the certificate had expired: %v", err)
	}
	if _, err := receipt.Verify(r2, receipt.Options{}); err == nil || errors.Is(err, receipt.ErrUnverified) {
		t.Fatalf("no roots: %v", err)
	}
}
