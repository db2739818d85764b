package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/receipt"
	"github.com/cordon-mdm/cordon/receipt/receipttest"
)

// TestReceiptVerifyOffline: `cordonctl receipt verify` needs only the
// file and the CA certificate; exit 0 with a summary when it verifies,
// 7 with the reason when one byte is changed or the CA is another.
func TestReceiptVerifyOffline(t *testing.T) {
	const device = "7d6c5b4a-3f2e-4d1c-8b0a-9f8e7d6c5b4a"
	ca, key := receipttest.New(t), receipttest.Key(t)
	at := time.Now().UTC()
	r := protocol.WipeReceipt{Format: protocol.ReceiptFormat, DeviceID: device, CommandID: "c-9", Complete: true,
		Clock: protocol.ReceiptClock, StartedAt: at, SignedAt: at,
		Volumes: []protocol.ErasedVolume{{Device: "/dev/sda3", UUID: "uuid-1", LUKSVersion: 2, HeaderBytes: 1 << 24,
			HeaderSHA256Before: strings.Repeat("aa", 32), HeaderSHA256After: strings.Repeat("bb", 32), KeySlotsBefore: 1, ErasedAt: at}},
		CJIPaths: []protocol.DeletedPath{{Path: "/srv/cji", Files: 2, DeletedAt: at}}}
	if err := receipt.Sign(&r, key, ca.Device(t, device, key.Public())); err != nil {
		t.Fatal(err)
	}
	file, _ := r.Canonical()
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good, caPEM := write("receipt.json", append(file, '\n')), write("ca.pem", ca.RootPEM())
	var out bytes.Buffer
	if err := run([]string{"receipt", "verify", good, "--ca", caPEM}, &out); err != nil {
		t.Fatalf("verify: %v", err)
	}
	for _, want := range []string{"VERIFIED", device, "uuid-1", "key slots 1 -> 0", "device's clock", receipt.Digest(file)} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
	tampered := bytes.Replace(file, []byte(`"files":2`), []byte(`"files":3`), 1)
	for name, args := range map[string][]string{
		"one byte changed": {"receipt", "verify", write("tampered.json", tampered), "--ca", caPEM},
		"another CA":       {"receipt", "verify", good, "--ca", write("other.pem", receipttest.New(t).RootPEM())},
		"another device":   {"receipt", "verify", good, "--ca", caPEM, "--device", "someone-else"},
	} {
		err := run(args, &bytes.Buffer{})
		if exitCode(err) != exitReceipt || !strings.Contains(err.Error(), "does not verify") {
			t.Errorf("%s: exit %d, %v", name, exitCode(err), err)
		}
	}
	if err := run([]string{"receipt", "verify", good}, &bytes.Buffer{}); exitCode(err) != exitUsage {
		t.Errorf("without --ca: %v", err)
	}
}
