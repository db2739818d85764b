package windows

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/protocol"
)

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func checkReport(t testing.TB, p protocol.Posture) {
	t.Helper()
	p.CollectedAt = time.Now()
	p.OS.Platform = "windows/amd64"
	if err := p.Check(); err != nil {
		t.Fatal(err)
	}
}

var (
	errExit1   = errors.New("exit status 1")
	errTimeout = errors.New("signal: killed (timed out after 1m0s)")
)

func TestParseBitLocker(t *testing.T) {
	cases := []struct {
		name, file string
		out        Output
		state      string
		cipher     string
		bits       int
		unknown    []string
	}{
		{name: "xts 256 protected", file: "bitlocker_xts256_on.json", state: protocol.DiskEncrypted, cipher: "aes-xts", bits: 256},
		{name: "suspended", file: "bitlocker_suspended.json", state: protocol.DiskUnencrypted, cipher: "aes-xts", bits: 128},
		{name: "off", file: "bitlocker_off.json", state: protocol.DiskUnencrypted},
		{name: "encrypting", file: "bitlocker_encrypting.json", state: protocol.DiskInProgress, cipher: "aes-xts", bits: 128},
		{name: "array, C: second", file: "bitlocker_two_volumes.json", state: protocol.DiskEncrypted, cipher: "aes-cbc", bits: 256},
		{name: "paused", out: Output{Stdout: []byte(`{"DriveLetter":"C:","ProtectionStatus":0,"ConversionStatus":4,"EncryptionMethod":7}`)}, state: protocol.DiskInProgress, cipher: "aes-xts", bits: 256},
		{name: "hardware", out: Output{Stdout: []byte(`{"DriveLetter":"C:","ProtectionStatus":1,"ConversionStatus":1,"EncryptionMethod":5}`)}, state: protocol.DiskEncrypted, cipher: "hardware", unknown: []string{"key_bits"}},
		{name: "unknown method", out: Output{Stdout: []byte(`{"DriveLetter":"C:","ProtectionStatus":1,"ConversionStatus":1,"EncryptionMethod":-1}`)}, state: protocol.DiskEncrypted, unknown: []string{"cipher", "key_bits"}},
		{name: "protection unknown", out: Output{Stdout: []byte(`{"DriveLetter":"C:","ProtectionStatus":2,"ConversionStatus":1,"EncryptionMethod":7}`)}, state: protocol.DiskUnknown, cipher: "aes-xts", bits: 256, unknown: []string{"state"}},
		{name: "conversion null", out: Output{Stdout: []byte(`{"DriveLetter":"C:","ProtectionStatus":1,"ConversionStatus":null,"EncryptionMethod":7}`)}, state: protocol.DiskUnknown, unknown: []string{"state"}},
		{name: "conversion garbled", out: Output{Stdout: []byte(`{"DriveLetter":"C:","ProtectionStatus":1,"ConversionStatus":"FullyEncrypted"}`)}, state: protocol.DiskUnknown, unknown: []string{"state"}},
		{name: "conversion out of range", out: Output{Stdout: []byte(`{"DriveLetter":"C:","ProtectionStatus":1,"ConversionStatus":9}`)}, state: protocol.DiskUnknown, unknown: []string{"state"}},
		{name: "no C:", out: Output{Stdout: []byte(`{"DriveLetter":"E:","ProtectionStatus":1,"ConversionStatus":1}`)}, state: protocol.DiskUnknown, unknown: []string{"state"}},
		{name: "access denied", out: Output{Stderr: fixture(t, "bitlocker_access_denied.stderr")}, state: protocol.DiskUnknown, unknown: []string{"state"}},
		{name: "invalid namespace", out: Output{Stderr: fixture(t, "bitlocker_invalid_namespace.stderr"), Err: errExit1}, state: protocol.DiskUnknown, unknown: []string{"state"}},
		{name: "empty", out: Output{Stdout: []byte("\r\n")}, state: protocol.DiskUnknown, unknown: []string{"state"}},
		{name: "garbled", out: Output{Stdout: []byte("DriveLetter : C:\r\nProtectionStatus : 1")}, state: protocol.DiskUnknown, unknown: []string{"state"}},
		{name: "truncated", out: Output{Stdout: []byte(`{"DriveLetter":"C:","Prot`)}, state: protocol.DiskUnknown, unknown: []string{"state"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := c.out
			if c.file != "" {
				out.Stdout = fixture(t, c.file)
			}
			d := ParseBitLocker(out, "C:")
			if d.State != c.state || d.Cipher != c.cipher || d.KeyBits != c.bits || d.Volume != "C:" {
				t.Fatalf("got %+v", d)
			}
			if len(d.Unknown) != len(c.unknown) {
				t.Fatalf("unknown %v, want keys %v", d.Unknown, c.unknown)
			}
			for _, f := range c.unknown {
				if d.Unknown[f] == "" {
					t.Fatalf("no reason for %s: %v", f, d.Unknown)
				}
			}
			if d.State != protocol.DiskUnknown && d.State != protocol.DiskUnencrypted && d.Scheme != "bitlocker" {
				t.Fatalf("scheme %q", d.Scheme)
			}
			checkReport(t, protocol.Posture{Disk: d})
		})
	}
	d := ParseBitLocker(Output{Stderr: fixture(t, "bitlocker_access_denied.stderr")}, "C:")
	if !strings.Contains(d.Unknown["state"], "access denied") {
		t.Fatalf("reason %q", d.Unknown["state"])
	}
}

func FuzzParseBitLocker(f *testing.F) {
	for _, n := range []string{"bitlocker_xts256_on.json", "bitlocker_two_volumes.json", "bitlocker_suspended.json"} {
		f.Add(fixture(f, n), []byte(nil))
	}
	f.Add([]byte(`{"value":[{"DriveLetter":"C:","ConversionStatus":"2"}],"Count":1}`), []byte(nil))
	f.Add([]byte(nil), fixture(f, "bitlocker_access_denied.stderr"))
	f.Fuzz(func(t *testing.T, stdout, stderr []byte) {
		d := ParseBitLocker(Output{Stdout: stdout, Stderr: stderr}, "C:")
		if d.State == protocol.DiskUnknown && d.Unknown["state"] == "" {
			t.Fatal("unknown state without a reason")
		}
		checkReport(t, protocol.Posture{Disk: d})
	})
}
