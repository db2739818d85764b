package integration

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/internal/testenv"
	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/receipt"
	"github.com/cordon-mdm/cordon/server/store"
)

// checkWipeReceipt: the wipe's receipt arrived with its answer and the
// server stored it verified; the API shows it with the LUKS UUID
// cryptsetup reports for img, header hashes that changed and every key
// slot gone; the trail has its digest; `cordonctl command receipt`
// prints the file that `cordonctl receipt verify` accepts against the CA
// certificate alone, and a copy with one byte changed fails with exit 7.
func checkWipeReceipt(t *testing.T, e *testenv.Env, key, cmdID, deviceID, img string) {
	t.Helper()
	var got struct {
		Receipt *struct {
			Status  string          `json:"status"`
			Reason  string          `json:"reason"`
			SHA256  string          `json:"sha256"`
			Receipt json.RawMessage `json:"receipt"`
		} `json:"receipt"`
	}
	if st := e.Do("GET", "/api/v1/commands/"+cmdID, key, nil, &got); st != 200 || got.Receipt == nil {
		t.Fatalf("command %s: %d, no receipt", cmdID, st)
	}
	if got.Receipt.Status != "verified" {
		t.Fatalf("receipt %s: %s", got.Receipt.Status, got.Receipt.Reason)
	}
	var r protocol.WipeReceipt
	if err := json.Unmarshal(got.Receipt.Receipt, &r); err != nil {
		t.Fatal(err)
	}
	uuid, err := exec.Command("cryptsetup", "luksUUID", img).Output()
	if err != nil {
		t.Fatal(err)
	}
	if r.DeviceID != deviceID || r.CommandID != cmdID || !r.Complete || len(r.Volumes) != 1 {
		t.Fatalf("receipt %+v", r)
	}
	v := r.Volumes[0]
	if v.Device != img || v.UUID != strings.TrimSpace(string(uuid)) || v.HeaderSHA256Before == v.HeaderSHA256After ||
		v.KeySlotsBefore < 1 || v.KeySlotsAfter != 0 {
		t.Fatalf("volume %+v, cryptsetup says UUID %s", v, uuid)
	}
	entries := e.Audit("wipe.receipt")
	if len(entries) != 1 || entries[0].Details["sha256"] != got.Receipt.SHA256 || entries[0].Details["status"] != "verified" {
		t.Fatalf("wipe.receipt entries %+v, want one with sha256 %s", entries, got.Receipt.SHA256)
	}

	// The incident for the lost device, and its response form, show the
	// receipt as proof.
	inc := &store.Incident{ID: "11111111-aaaa-4bbb-8ccc-" + cmdID[len(cmdID)-12:], DeviceID: deviceID, Reporter: "user:laso@pd",
		Detection: "reported", Kind: "total_loss", StartedAt: time.Now().UTC().Add(-time.Hour), Status: "reported",
		Category: "total_loss", Severity: "critical", DurationClass: "extended", CreatedAt: time.Now().UTC(), UpdatedAt: time.Now().UTC()}
	if err := e.Server.Store.DB().Create(inc).Error; err != nil {
		t.Fatal(err)
	}
	email := "laso-receipt@agency.gov"
	b := newBrowserless(t, e)
	b.signIn(email, addConsoleUser(t, e, email, "laso"), time.Now)
	for _, page := range []string{"/console/incidents/" + inc.ID, "/console/incidents/" + inc.ID + "/form"} {
		st, body, _ := b.get(page)
		if st != 200 || !strings.Contains(body, `id="wipe-receipts"`) || !strings.Contains(body, `class="receipt-verified"`) ||
			!strings.Contains(body, v.UUID) || !strings.Contains(body, got.Receipt.SHA256) || !strings.Contains(body, "device clock") {
			t.Fatalf("%s: %d, no verified receipt block\n%.600s", page, st, body)
		}
	}

	bin := buildBinary(t, "cordonctl", "")
	dir := t.TempDir()
	out, err := cordonctlCmd(bin, e, key, "command", "receipt", cmdID).Output()
	if err != nil {
		t.Fatalf("cordonctl command receipt: %v", err)
	}
	file, caFile := filepath.Join(dir, "receipt.json"), filepath.Join(dir, "ca.pem")
	os.WriteFile(file, out, 0o600)
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: e.Server.CA.Root().Raw}), 0o644)
	if d := receipt.Digest(bytes.TrimSuffix(out, []byte("\n"))); d != got.Receipt.SHA256 {
		t.Fatalf("the printed receipt's digest %s is not the stored %s", d, got.Receipt.SHA256)
	}
	// Offline: no server address, no key, only the file and the CA.
	verify := func(path string) (string, int) {
		cmd := exec.Command(bin, "receipt", "verify", path, "--ca", caFile)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return string(out), ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return string(out), 0
	}
	if msg, code := verify(file); code != 0 || !strings.Contains(msg, "VERIFIED") || !strings.Contains(msg, v.UUID) {
		t.Fatalf("receipt verify: exit %d\n%s", code, msg)
	}
	tampered := bytes.Replace(out, []byte(`"key_slots_before":`), []byte(`"key_slots_before":1`), 1)
	if bytes.Equal(tampered, out) {
		t.Fatal("nothing to tamper with")
	}
	bad := filepath.Join(dir, "tampered.json")
	os.WriteFile(bad, tampered, 0o600)
	if msg, code := verify(bad); code != 7 || !strings.Contains(msg, "does not verify") {
		t.Fatalf("a tampered receipt: exit %d\n%s", code, msg)
	}
}
