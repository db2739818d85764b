package android

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/protocol"
)

// fakeClock pins a Host's time so staleness is tested without sleeping.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func testHost() (*Host, *fakeClock) {
	c := &fakeClock{t: time.Date(2025, 11, 3, 9, 0, 0, 0, time.UTC)}
	return &Host{now: c.now}, c
}

func TestHostNothingReported(t *testing.T) {
	var h Host // the zero value must be usable
	l := h.Lock()
	if l.State != protocol.LockUnknown || l.Source != HostSource || l.Unknown["state"] != "the host app has not reported the lock state" {
		t.Errorf("lock %+v", l)
	}
	p := h.LockPolicy()
	if p.Enabled != nil || p.TimeoutSeconds != nil || p.Unknown["enabled"] != "the host app has not reported the lock policy" || p.Unknown["timeout_seconds"] == "" {
		t.Errorf("lock policy %+v", p)
	}
	b := h.Bluetooth()
	if b.Present != nil || b.Unknown["present"] != "the host app has not reported Bluetooth" {
		t.Errorf("bluetooth %+v", b)
	}
	checkReport(t, protocol.Posture{Lock: l, LockPolicy: p, Bluetooth: b})
}

func TestHostNil(t *testing.T) {
	var h *Host
	if l := h.Lock(); l.State != protocol.LockUnknown || l.Unknown["state"] != noHost {
		t.Errorf("lock %+v", l)
	}
	if p := h.LockPolicy(); p.Unknown["enabled"] != noHost || p.Unknown["timeout_seconds"] != noHost {
		t.Errorf("lock policy %+v", p)
	}
	if b := h.Bluetooth(); b.Unknown["present"] != noHost {
		t.Errorf("bluetooth %+v", b)
	}
}

func TestHostLock(t *testing.T) {
	h, c := testHost()
	if err := h.SetLock("Locked", 0); err == nil {
		t.Error("SetLock accepted \"Locked\"")
	}
	if err := h.SetLock("locked", 30); err != nil {
		t.Fatal(err)
	}
	at := c.now()
	c.advance(time.Minute)
	l := h.Lock()
	if l.State != protocol.LockLocked || l.Source != HostSource || len(l.Unknown) != 0 {
		t.Errorf("lock %+v", l)
	}
	if l.IdleSeconds == nil || *l.IdleSeconds != 30 || l.IdleSince == nil || !l.IdleSince.Equal(at.Add(-30*time.Second)) {
		t.Errorf("idle %v since %v", show(l.IdleSeconds), show(l.IdleSince))
	}
	checkReport(t, protocol.Posture{Lock: l})

	c.advance(DefaultLockMaxAge) // now 3 minutes old
	l = h.Lock()
	if l.State != protocol.LockUnknown || l.Unknown["state"] != "host app report is 3m old" || l.IdleSeconds != nil {
		t.Errorf("stale lock %+v", l)
	}
	c.advance(2 * time.Minute)
	if l := h.Lock(); l.Unknown["state"] != "host app report is 5m old" {
		t.Errorf("stale lock %+v", l)
	}

	if err := h.SetLock("unlocked", -1); err != nil {
		t.Fatal(err)
	}
	l = h.Lock()
	if l.State != protocol.LockUnlocked || l.IdleSeconds != nil || l.Unknown["idle_seconds"] == "" || l.Unknown["state"] != "" {
		t.Errorf("lock without idle %+v", l)
	}
	h.SetLock("unknown", 5)
	if l := h.Lock(); l.State != protocol.LockUnknown || l.Unknown["state"] == "" || *l.IdleSeconds != 5 {
		t.Errorf("unknown lock %+v", l)
	}
	if err := h.ReportUnreadable(SectionLock, "KeyguardManager\tthrew"); err != nil {
		t.Fatal(err)
	}
	if l := h.Lock(); l.State != protocol.LockUnknown || l.Unknown["state"] != "host app: KeyguardManagerthrew" {
		t.Errorf("unreadable lock %+v", l)
	}
}

func TestHostMaxAge(t *testing.T) {
	h, c := testHost()
	h.SetMaxAge(10*time.Second, time.Minute, 0)
	h.SetLock("locked", 0)
	h.SetLockPolicy(true, 60)
	h.SetBluetooth(true, true, "")
	c.advance(11 * time.Second)
	if l := h.Lock(); l.Unknown["state"] != "host app report is 11s old" {
		t.Errorf("lock %+v", l)
	}
	if p := h.LockPolicy(); p.Enabled == nil {
		t.Errorf("policy stale too soon %+v", p)
	}
	c.advance(time.Minute)
	if p := h.LockPolicy(); p.Unknown["enabled"] != "host app report is 1m11s old" {
		t.Errorf("policy %+v", p)
	}
	// Zero kept the default for Bluetooth.
	if b := h.Bluetooth(); b.Present == nil {
		t.Errorf("bluetooth stale too soon %+v", b)
	}
	c.advance(DefaultBluetoothMaxAge)
	if b := h.Bluetooth(); b.Unknown["present"] != "host app report is 6m11s old" {
		t.Errorf("bluetooth %+v", b)
	}
}

func TestHostLockPolicy(t *testing.T) {
	h, c := testHost()
	h.SetLockPolicy(true, 300)
	p := h.LockPolicy()
	if p.Enabled == nil || !*p.Enabled || p.TimeoutSeconds == nil || *p.TimeoutSeconds != 300 || len(p.Unknown) != 0 || p.Source != HostSource {
		t.Errorf("got %+v", p)
	}
	checkReport(t, protocol.Posture{LockPolicy: p})
	h.SetLockPolicy(false, -1)
	p = h.LockPolicy()
	if p.Enabled == nil || *p.Enabled || p.TimeoutSeconds != nil || p.Unknown["timeout_seconds"] == "" {
		t.Errorf("got %+v", p)
	}
	checkReport(t, protocol.Posture{LockPolicy: p})
	h.ReportUnreadable(SectionLockPolicy, "")
	if p := h.LockPolicy(); p.Enabled != nil || p.Unknown["enabled"] != "host app: no reason given" {
		t.Errorf("got %+v", p)
	}
	h.SetLockPolicy(true, 0)
	c.advance(DefaultLockPolicyMaxAge + time.Hour)
	if p := h.LockPolicy(); p.Enabled != nil || p.Unknown["enabled"] != "host app report is 1h15m old" {
		t.Errorf("got %+v", p)
	}
}

func TestHostBluetooth(t *testing.T) {
	h, c := testHost()
	h.SetBluetooth(false, true, "AA:BB:CC:DD:EE:FF")
	b := h.Bluetooth()
	if b.Present == nil || *b.Present || b.Powered == nil || *b.Powered || b.Adapter != "" || len(b.Unknown) != 0 {
		t.Errorf("no adapter %+v", b)
	}

	h.SetBluetooth(true, true, "02:00:00:00:00:00")
	b = h.Bluetooth()
	if !*b.Present || !*b.Powered || b.Adapter != "" || b.Unknown["adapter"] != "Android hides the adapter address from apps" ||
		b.Unknown["devices"] != "the host app has not reported the Bluetooth devices" {
		t.Errorf("hidden address %+v", b)
	}
	h.SetBluetooth(true, true, "nonsense")
	if b := h.Bluetooth(); b.Unknown["adapter"] == "" || b.Adapter != "" {
		t.Errorf("bad address %+v", b)
	}
	h.SetBluetooth(true, true, "")
	if b := h.Bluetooth(); b.Unknown["adapter"] == "" {
		t.Errorf("no address %+v", b)
	}
	h.SetBluetooth(true, true, "aa-bb-cc-dd-ee-0f")
	if b := h.Bluetooth(); b.Adapter != "AA:BB:CC:DD:EE:0F" || b.Unknown["adapter"] != "" {
		t.Errorf("address %+v", b)
	}

	if err := h.AddBluetoothDevice("11:22:33:44:55:66", "x", true, false); err == nil {
		t.Error("AddBluetoothDevice before Begin")
	}
	if err := h.CommitBluetoothDevices(); err == nil {
		t.Error("Commit before Begin")
	}
	h.BeginBluetoothDevices()
	for _, d := range []struct {
		addr, name        string
		paired, connected bool
	}{
		{"11:22:33:44:55:66", "Headset\x00\n", true, false},
		{"aa:bb:cc:dd:ee:01", "", true, false},
		{"11-22-33-44-55-66", "other name", false, true},
		{"AA:BB:CC:DD:EE:01", "Radio " + strings.Repeat("é", 200), false, false},
	} {
		if err := h.AddBluetoothDevice(d.addr, d.name, d.paired, d.connected); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.AddBluetoothDevice("11:22:33:44:55", "short", true, true); err == nil {
		t.Error("short address accepted")
	}
	// Not committed yet.
	if b := h.Bluetooth(); b.Devices != nil {
		t.Errorf("devices before commit %+v", b.Devices)
	}
	if err := h.CommitBluetoothDevices(); err != nil {
		t.Fatal(err)
	}
	if err := h.CommitBluetoothDevices(); err == nil {
		t.Error("second Commit without Begin")
	}
	b = h.Bluetooth()
	if len(b.Devices) != 2 || len(b.Unknown) != 0 {
		t.Fatalf("devices %+v unknown %v", b.Devices, b.Unknown)
	}
	if d := b.Devices[0]; d != (protocol.BluetoothDevice{Address: "11:22:33:44:55:66", Name: "Headset", Paired: true, Connected: true}) {
		t.Errorf("merged device %+v", d)
	}
	if d := b.Devices[1]; d.Address != "AA:BB:CC:DD:EE:01" || len(d.Name) > maxDeviceName || !strings.HasPrefix(d.Name, "Radio é") ||
		!strings.HasSuffix(d.Name, "é") || !d.Paired || d.Connected {
		t.Errorf("second device %+v", d)
	}
	checkReport(t, protocol.Posture{Bluetooth: b})
	b.Devices[0].Name = "changed by the caller"
	if h.Bluetooth().Devices[0].Name != "Headset" {
		t.Error("reader shares the host's devices")
	}

	// Android lists no bonded devices while the adapter is off.
	h.SetBluetooth(true, false, "AA:BB:CC:DD:EE:0F")
	h.BeginBluetoothDevices()
	h.CommitBluetoothDevices()
	if b := h.Bluetooth(); b.Devices != nil || !strings.Contains(b.Unknown["devices"], "Bluetooth is off") {
		t.Errorf("off %+v", b)
	}
	h.SetBluetooth(true, true, "AA:BB:CC:DD:EE:0F")
	if b := h.Bluetooth(); b.Devices != nil || len(b.Unknown) != 0 {
		t.Errorf("on, no devices %+v", b)
	}

	// The radio and the devices go stale separately.
	c.advance(DefaultBluetoothMaxAge - time.Second)
	h.SetBluetooth(true, true, "AA:BB:CC:DD:EE:0F")
	c.advance(2 * time.Second)
	if b := h.Bluetooth(); b.Present == nil || b.Unknown["devices"] != "host app report is 5m1s old" {
		t.Errorf("stale devices %+v", b)
	}

	h.ReportUnreadable(SectionBluetoothDevices, "BLUETOOTH_CONNECT not granted")
	if b := h.Bluetooth(); b.Unknown["devices"] != "host app: BLUETOOTH_CONNECT not granted" {
		t.Errorf("unreadable devices %+v", b)
	}
	h.ReportUnreadable(SectionBluetooth, "no BluetoothManager")
	if b := h.Bluetooth(); b.Present != nil || b.Unknown["present"] != "host app: no BluetoothManager" {
		t.Errorf("unreadable bluetooth %+v", b)
	}
	if err := h.ReportUnreadable("wifi", "x"); err == nil {
		t.Error("unknown section accepted")
	}
}

func TestHostBluetoothTooMany(t *testing.T) {
	h, _ := testHost()
	h.SetBluetooth(true, true, "")
	h.BeginBluetoothDevices()
	var errs int
	for i := range protocol.MaxBluetoothDevices + 3 {
		if h.AddBluetoothDevice(fmt.Sprintf("00:00:00:00:%02X:%02X", i/256, i%256), "", true, false) != nil {
			errs++
		}
	}
	h.CommitBluetoothDevices()
	b := h.Bluetooth()
	if errs != 3 || len(b.Devices) != protocol.MaxBluetoothDevices || !strings.Contains(b.Unknown["devices"], "3 more devices") {
		t.Errorf("errs %d, %d devices, unknown %v", errs, len(b.Devices), b.Unknown)
	}
	checkReport(t, protocol.Posture{Bluetooth: b})
}

func TestHostReportUnreadableLongReason(t *testing.T) {
	h, _ := testHost()
	h.ReportUnreadable(SectionLock, strings.Repeat("ü", 1000))
	l := h.Lock()
	if len(l.Unknown["state"]) > maxReason+len("host app: ") {
		t.Errorf("reason %d bytes", len(l.Unknown["state"]))
	}
	checkReport(t, protocol.Posture{Lock: l})
}

func TestHostSubscribeLock(t *testing.T) {
	h, _ := testHost()
	ch, cancel := h.SubscribeLock()
	pending := func() bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}
	h.SetLock("unlocked", 0)
	if !pending() {
		t.Error("first report not signalled")
	}
	h.SetLock("unlocked", 10)
	if pending() {
		t.Error("same state signalled")
	}
	h.SetLock("locked", 0)
	h.SetLock("unlocked", 0) // coalesced with the one before
	if !pending() || pending() {
		t.Error("changes not coalesced into one signal")
	}
	h.ReportUnreadable(SectionLock, "gone")
	if !pending() {
		t.Error("unreadable not signalled")
	}
	h.SetLockPolicy(true, 1)
	h.SetBluetooth(true, true, "")
	if pending() {
		t.Error("other sections signalled")
	}
	cancel()
	cancel()
	h.SetLock("locked", 0)
	if pending() {
		t.Error("signalled after cancel")
	}
}

func TestHostConcurrent(t *testing.T) {
	h := NewHost()
	ch, cancel := h.SubscribeLock()
	defer cancel()
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for j := range 200 {
				h.SetLock([]string{"locked", "unlocked"}[(i+j)%2], int64(j))
				h.SetLockPolicy(j%2 == 0, int64(j))
				h.SetBluetooth(true, true, "AA:BB:CC:DD:EE:FF")
				h.BeginBluetoothDevices()
				h.AddBluetoothDevice("AA:BB:CC:DD:EE:01", "x", true, false)
				h.CommitBluetoothDevices()
				h.Lock()
				h.LockPolicy()
				h.Bluetooth()
				select {
				case <-ch:
				default:
				}
			}
		})
	}
	wg.Wait()
	if l := h.Lock(); l.State == protocol.LockUnknown {
		t.Errorf("lock %+v", l)
	}
}

func TestNormalizeAddress(t *testing.T) {
	for in, want := range map[string]string{
		"aa:bb:cc:dd:ee:ff": "AA:BB:CC:DD:EE:FF",
		"00-1A-7D-DA-71-13": "00:1A:7D:DA:71:13",
		"00:1a:7D:da:71:13": "00:1A:7D:DA:71:13",
	} {
		if got, err := NormalizeAddress(in); err != nil || got != want {
			t.Errorf("NormalizeAddress(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "00:1A:7D:DA:71", "00:1A:7D:DA:71:13:00", "00:1A-7D:DA:71:13", "00.1A.7D.DA.71.13",
		"0G:1A:7D:DA:71:13", "001A7DDA7113", "00:1A:7D:DA:71:1\u00e9"} {
		if got, err := NormalizeAddress(in); err == nil {
			t.Errorf("NormalizeAddress(%q) = %q, want error", in, got)
		}
	}
}

func TestFormatAge(t *testing.T) {
	for d, want := range map[time.Duration]string{
		45 * time.Second:                     "45s",
		5 * time.Minute:                      "5m",
		5*time.Minute + 400*time.Millisecond: "5m",
		90 * time.Second:                     "1m30s",
		time.Hour:                            "1h",
		time.Hour + 30*time.Minute:           "1h30m",
		time.Hour + 2*time.Second:            "1h0m2s",
	} {
		if got := formatAge(d); got != want {
			t.Errorf("formatAge(%v) = %q, want %q", d, got, want)
		}
	}
}
