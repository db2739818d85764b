package actions

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeConfig(t *testing.T, body string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "wipe.json")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	// Chmod, because WriteFile's mode goes through the umask.
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadWipeConfig(t *testing.T) {
	cfg, err := LoadWipeConfig(filepath.Join(t.TempDir(), "absent.json"))
	if err != nil || len(cfg.DataVolumes) != 0 || len(cfg.CJIPaths) != 0 || cfg.PowerOff {
		t.Fatalf("missing file: %+v, %v", cfg, err)
	}

	p := writeConfig(t, `{"data_volumes":["/var/lib/cji.img"],"cji_paths":["/srv/cji"],"power_off":true}`, 0o640)
	cfg, err = LoadWipeConfig(p)
	if err != nil || len(cfg.DataVolumes) != 1 || cfg.DataVolumes[0] != "/var/lib/cji.img" || len(cfg.CJIPaths) != 1 || !cfg.PowerOff {
		t.Fatalf("good file: %+v, %v", cfg, err)
	}

	for name, tc := range map[string]struct {
		body string
		mode os.FileMode
		want string
	}{
		"unknown field":   {`{"cji_path":["/srv/cji"]}`, 0o600, "unknown field"},
		"world writable":  {`{}`, 0o602, "writable"},
		"group writable":  {`{}`, 0o620, "writable"},
		"trailing data":   {`{} {}`, 0o600, "trailing"},
		"relative CJI":    {`{"cji_paths":["srv/cji"]}`, 0o600, "absolute"},
		"root as CJI":     {`{"cji_paths":["/srv/.."]}`, 0o600, `"/"`},
		"relative volume": {`{"data_volumes":["cji.img"]}`, 0o600, "absolute"},
		"not JSON":        {`power_off = true`, 0o600, "invalid"},
	} {
		_, err := LoadWipeConfig(writeConfig(t, tc.body, tc.mode))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error mentioning %q", name, err, tc.want)
		}
	}

	if _, err := LoadWipeConfig(t.TempDir()); err == nil {
		t.Error("a directory must not load as a config")
	}
}

func TestWipePlanString(t *testing.T) {
	p := WipePlan{
		LUKSDevices: []string{"/dev/nvme0n1p3", "/var/lib/cji.img"},
		CJIPaths:    []string{"/srv/cji", "/home/officer/reports"},
		PowerOff:    true,
		Notes:       []string{"data volume /dev/sdb1 skipped: not a LUKS volume"},
	}
	const want = `Remote wipe plan:
1. cryptsetup luksErase (every key slot destroyed; the data can no longer be decrypted):
   - /dev/nvme0n1p3
   - /var/lib/cji.img
2. Secure deletion of CJI paths (each file overwritten once with random data, then removed):
   - /srv/cji
   - /home/officer/reports
3. Destruction of the agent's identity key and enrollment, after the server acknowledges the wipe
4. Power-off
Notes:
   - data volume /dev/sdb1 skipped: not a LUKS volume
`
	if got := p.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}

	const empty = `Remote wipe plan:
1. cryptsetup luksErase (every key slot destroyed; the data can no longer be decrypted):
   (no LUKS device found)
2. Secure deletion of CJI paths (each file overwritten once with random data, then removed):
   (no CJI path configured)
3. Destruction of the agent's identity key and enrollment, after the server acknowledges the wipe
4. Power-off: not configured
`
	if got := (WipePlan{}).String(); got != empty {
		t.Errorf("empty plan: got:\n%s\nwant:\n%s", got, empty)
	}
}

func TestCapDetail(t *testing.T) {
	if got := capDetail([]string{"a", "b"}, ","); got != "a,b" {
		t.Fatalf("short: %q", got)
	}
	many := make([]string, 200)
	for i := range many {
		many[i] = "/dev/mapper/some-long-volume-name"
	}
	got := capDetail(many, ",")
	if len(got) > 1024 || !strings.Contains(got, "more)") {
		t.Fatalf("long list: %d bytes, %q", len(got), got[len(got)-20:])
	}
	got = capDetail([]string{strings.Repeat("x", 5000)}, ",")
	if len(got) > 1024 || !strings.Contains(got, "cut)") {
		t.Fatalf("one long item: %d bytes", len(got))
	}
}

func FuzzParseWipeConfig(f *testing.F) {
	f.Add([]byte(`{"data_volumes":["/var/lib/cji.img"],"cji_paths":["/srv/cji"],"power_off":true}`))
	f.Add([]byte(`{"cji_paths":["/"]}`))
	f.Add([]byte(`{} []`))
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg, err := parseWipeConfig(b)
		if err != nil {
			return
		}
		// Whatever decodes must hold the invariants Erase relies on.
		for _, p := range cfg.CJIPaths {
			if !filepath.IsAbs(p) || filepath.Clean(p) == "/" {
				t.Fatalf("accepted CJI path %q", p)
			}
		}
		for _, p := range cfg.DataVolumes {
			if !filepath.IsAbs(p) {
				t.Fatalf("accepted data volume %q", p)
			}
		}
	})
}
