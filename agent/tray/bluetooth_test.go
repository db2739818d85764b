package tray

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestBluetoothForm: the form lists the device's peers and files a
// request for the chosen one; an incomplete request is refused and
// nothing is filed.
func TestBluetoothForm(t *testing.T) {
	f, fa := startForm(t)
	resp, err := http.Get(f.URL(ModeBluetooth))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "11:22:33:44:55:66") || !strings.Contains(string(body), "Radio Headset") {
		t.Fatalf("form %d:\n%s", resp.StatusCode, body)
	}
	action := strings.TrimSuffix(f.URL(ModeBluetooth), "")
	resp, err = http.PostForm(action, url.Values{"address": {"11:22:33:44:55:66"}, "reason": {"radio for patrol"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 || len(fa.bt) != 0 {
		t.Fatalf("no supervisor: %d, filed %d", resp.StatusCode, len(fa.bt))
	}
	resp, err = http.PostForm(action, url.Values{"address": {"11:22:33:44:55:66"}, "other": {""}, "name": {"headset"},
		"reason": {"radio for patrol"}, "supervisor": {"sgt-ortiz"}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "req-7") {
		t.Fatalf("submit %d:\n%s", resp.StatusCode, body)
	}
	fa.mu.Lock()
	defer fa.mu.Unlock()
	if len(fa.bt) != 1 || fa.bt[0].Address != "11:22:33:44:55:66" || fa.bt[0].Supervisor != "sgt-ortiz" || fa.bt[0].Name != "headset" {
		t.Fatalf("filed %+v", fa.bt)
	}
}
