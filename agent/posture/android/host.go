package android

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/cordon-mdm/cordon/internal/input"
	"github.com/cordon-mdm/cordon/protocol"
)

// HostSource names where the host app's sections come from.
const HostSource = "host app"

// How old a host report may be before it is not believed. The lock state
// is the one incidents are classified by, so it must be fresh; the lock
// policy changes only when an administrator or the user changes it.
const (
	DefaultLockMaxAge       = 2 * time.Minute
	DefaultLockPolicyMaxAge = 15 * time.Minute
	DefaultBluetoothMaxAge  = 5 * time.Minute
)

// Sections the host app can say it could not read, for ReportUnreadable.
const (
	SectionLock             = "lock"
	SectionLockPolicy       = "lock_policy"
	SectionBluetooth        = "bluetooth"
	SectionBluetoothDevices = "bluetooth_devices"
)

// hiddenAdapterAddress is what BluetoothAdapter.getAddress returns to apps
// without the LOCAL_MAC_ADDRESS permission (Android 6 and later).
const hiddenAdapterAddress = "02:00:00:00:00:00"

// Bounds on text the host app hands over, so that a report built from it
// stays within the protocol's limits.
const (
	maxReason     = 256
	maxDeviceName = 248 // the Bluetooth specification's limit on a name
)

// Host receives what only the host app can read: the lock state and
// policy from KeyguardManager and DevicePolicyManager, and Bluetooth from
// BluetoothAdapter. Its exported methods with string, int64 and bool
// parameters are the ones gomobile binds for the host app; the others are
// for the agent. The host app should report each section when it changes
// and again at least once a minute, since a report older than the
// section's maximum age is treated as no report.
//
// A Host is safe for concurrent use; its zero value is ready to use.
type Host struct {
	mu  sync.Mutex
	now func() time.Time // nil means time.Now; tests pin it

	lockMaxAge, policyMaxAge, btMaxAge time.Duration // zero means the default

	lock    *stamped[lockReport]
	policy  *stamped[policyReport]
	radio   *stamped[radioReport]
	devices *stamped[devicesReport]
	batch   *deviceBatch

	subs map[chan struct{}]struct{}
}

// stamped is one report from the host app: its values, or the reason it
// could not read them, and when it was made.
type stamped[T any] struct {
	at     time.Time
	reason string // non-empty when the host app could not read the section
	v      T
}

type lockReport struct {
	state string
	idle  int64
}

type policyReport struct {
	enabled bool
	timeout int64
}

type radioReport struct {
	present, powered bool
	adapter          string // normalized, or "" and adapterUnknown says why
	adapterUnknown   string
}

type devicesReport struct {
	devices []protocol.BluetoothDevice
	dropped int
}

type deviceBatch struct {
	devices []protocol.BluetoothDevice
	index   map[string]int
	dropped int
}

// NewHost returns an empty Host, for callers (gomobile) that cannot take
// the address of a zero value.
func NewHost() *Host { return &Host{} }

// SetMaxAge sets how old each section's report may be before it is
// reported as unknown; zero keeps the default.
func (h *Host) SetMaxAge(lock, lockPolicy, bluetooth time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lockMaxAge, h.policyMaxAge, h.btMaxAge = lock, lockPolicy, bluetooth
}

func (h *Host) clock() time.Time {
	if h.now != nil {
		return h.now()
	}
	return time.Now()
}

// SetLock reports the lock state: "locked", "unlocked" or "unknown"
// (KeyguardManager.isDeviceLocked), and how many seconds the user has
// been idle, or a negative number when the host app cannot tell.
// Subscribers learn of a change of state at once.
func (h *Host) SetLock(state string, idleSeconds int64) error {
	switch state {
	case protocol.LockLocked, protocol.LockUnlocked, protocol.LockUnknown:
	default:
		return fmt.Errorf("lock state %q: want %q, %q or %q", input.Clip(state, 32), protocol.LockLocked, protocol.LockUnlocked, protocol.LockUnknown)
	}
	h.setLock(&stamped[lockReport]{v: lockReport{state: state, idle: idleSeconds}})
	return nil
}

func (h *Host) setLock(r *stamped[lockReport]) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r.at = h.clock()
	changed := h.lock == nil || h.lock.v.state != r.v.state || h.lock.reason != r.reason
	h.lock = r
	if changed {
		for ch := range h.subs {
			select {
			case ch <- struct{}{}:
			default: // a change is already pending for this subscriber
			}
		}
	}
}

// SetLockPolicy reports the automatic lock: whether the device locks
// itself, and after how many idle seconds (0 meaning never, negative when
// the host app cannot tell).
func (h *Host) SetLockPolicy(enabled bool, timeoutSeconds int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.policy = &stamped[policyReport]{at: h.clock(), v: policyReport{enabled: enabled, timeout: timeoutSeconds}}
}

// SetBluetooth reports the adapter: whether the device has one, whether
// it is on, and its address ("" when the host app cannot read it).
func (h *Host) SetBluetooth(present, powered bool, adapterAddress string) {
	r := &radioReport{present: present, powered: powered && present}
	switch addr, err := NormalizeAddress(adapterAddress); {
	case !present:
	case adapterAddress == "":
		r.adapterUnknown = "the host app did not report the adapter address"
	case err != nil:
		r.adapterUnknown = "the host app reported an invalid adapter address"
	case addr == hiddenAdapterAddress:
		r.adapterUnknown = "Android hides the adapter address from apps"
	default:
		r.adapter = addr
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.radio = &stamped[radioReport]{at: h.clock(), v: *r}
}

// BeginBluetoothDevices starts a new list of the devices the adapter
// knows, discarding any list begun and not committed. Only one list can
// be under way at a time.
func (h *Host) BeginBluetoothDevices() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.batch = &deviceBatch{index: map[string]int{}}
}

// AddBluetoothDevice adds one device to the list under way. A device
// added twice (once from the bonded devices, once from a profile's
// connected devices, say) is merged.
func (h *Host) AddBluetoothDevice(address, name string, paired, connected bool) error {
	addr, err := NormalizeAddress(address)
	if err != nil {
		return err
	}
	name = cleanText(name, maxDeviceName)
	h.mu.Lock()
	defer h.mu.Unlock()
	b := h.batch
	if b == nil {
		return errors.New("AddBluetoothDevice before BeginBluetoothDevices")
	}
	if i, ok := b.index[addr]; ok {
		d := &b.devices[i]
		d.Paired = d.Paired || paired
		d.Connected = d.Connected || connected
		if d.Name == "" {
			d.Name = name
		}
		return nil
	}
	if len(b.devices) >= protocol.MaxBluetoothDevices {
		b.dropped++
		return fmt.Errorf("more than %d Bluetooth devices: %s left out", protocol.MaxBluetoothDevices, addr)
	}
	b.index[addr] = len(b.devices)
	b.devices = append(b.devices, protocol.BluetoothDevice{Address: addr, Name: name, Paired: paired, Connected: connected})
	return nil
}

// CommitBluetoothDevices makes the list under way the reported one.
func (h *Host) CommitBluetoothDevices() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	b := h.batch
	if b == nil {
		return errors.New("CommitBluetoothDevices before BeginBluetoothDevices")
	}
	h.batch = nil
	h.devices = &stamped[devicesReport]{at: h.clock(), v: devicesReport{devices: b.devices, dropped: b.dropped}}
	return nil
}

// ReportUnreadable says the host app could not read a section (one of
// "lock", "lock_policy", "bluetooth", "bluetooth_devices") and why: a
// permission the user refused, an API that threw. Until the next report
// of that section the agent reports it unknown with this reason.
func (h *Host) ReportUnreadable(section, reason string) error {
	reason = cleanText(reason, maxReason)
	if reason == "" {
		reason = "no reason given"
	}
	switch section {
	case SectionLock:
		h.setLock(&stamped[lockReport]{reason: reason, v: lockReport{state: protocol.LockUnknown, idle: -1}})
		return nil
	case SectionLockPolicy, SectionBluetooth, SectionBluetoothDevices:
	default:
		return fmt.Errorf("unknown section %q", input.Clip(section, 32))
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	at := h.clock()
	switch section {
	case SectionLockPolicy:
		h.policy = &stamped[policyReport]{at: at, reason: reason}
	case SectionBluetooth:
		h.radio = &stamped[radioReport]{at: at, reason: reason}
	case SectionBluetoothDevices:
		h.devices = &stamped[devicesReport]{at: at, reason: reason}
	}
	return nil
}

// SubscribeLock returns a channel that receives after each change of the
// reported lock state, and a function that ends the subscription. Changes
// that come faster than they are received are coalesced.
func (h *Host) SubscribeLock() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	h.mu.Lock()
	if h.subs == nil {
		h.subs = map[chan struct{}]struct{}{}
	}
	h.subs[ch] = struct{}{}
	h.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			h.mu.Lock()
			delete(h.subs, ch)
			h.mu.Unlock()
		})
	}
}

// noHost is the reason for every host section when the agent runs
// without a host app.
const noHost = "no host app is attached to the agent"

// unusable says why a report cannot be used: never made, too old, or the
// host app could not read the section. It returns "" for a usable report.
func unusable[T any](h *Host, r *stamped[T], maxAge, def time.Duration, what string) string {
	if r == nil {
		return "the host app has not reported " + what
	}
	if maxAge <= 0 {
		maxAge = def
	}
	if age := h.clock().Sub(r.at); age > maxAge {
		return "host app report is " + formatAge(age) + " old"
	}
	if r.reason != "" {
		return "host app: " + r.reason
	}
	return ""
}

// Lock is the lock state as the host app last reported it. The idle time
// is as of that report, which is at most the maximum age old.
func (h *Host) Lock() *protocol.LockState {
	l := &protocol.LockState{State: protocol.LockUnknown}
	l.Source = HostSource
	if h == nil {
		l.SetUnknown("state", noHost)
		l.SetUnknown("idle_seconds", noHost)
		return l
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.lock
	if why := unusable(h, s, h.lockMaxAge, DefaultLockMaxAge, "the lock state"); why != "" {
		l.SetUnknown("state", why)
		l.SetUnknown("idle_seconds", why)
		return l
	}
	r := s.v
	l.State = r.state
	if r.state == protocol.LockUnknown {
		l.SetUnknown("state", "the host app could not tell whether the device is locked")
	}
	if r.idle < 0 {
		l.SetUnknown("idle_seconds", "the host app could not tell how long the device has been idle")
	} else {
		idle := r.idle
		since := s.at.Add(-time.Duration(idle) * time.Second).UTC()
		l.IdleSeconds, l.IdleSince = &idle, &since
	}
	return l
}

// LockPolicy is the automatic lock as the host app last reported it.
func (h *Host) LockPolicy() *protocol.LockPolicy {
	l := &protocol.LockPolicy{}
	l.Source = HostSource
	unknown := func(why string) *protocol.LockPolicy {
		l.SetUnknown("enabled", why)
		l.SetUnknown("timeout_seconds", why)
		return l
	}
	if h == nil {
		return unknown(noHost)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.policy
	if why := unusable(h, s, h.policyMaxAge, DefaultLockPolicyMaxAge, "the lock policy"); why != "" {
		return unknown(why)
	}
	r := s.v
	enabled := r.enabled
	l.Enabled = &enabled
	if r.timeout < 0 {
		l.SetUnknown("timeout_seconds", "the host app could not read the lock timeout")
	} else {
		timeout := r.timeout
		l.TimeoutSeconds = &timeout
	}
	return l
}

// Bluetooth is the adapter and its devices as the host app last reported
// them. The two are reported separately and each goes stale on its own.
func (h *Host) Bluetooth() *protocol.Bluetooth {
	b := &protocol.Bluetooth{}
	b.Source = HostSource
	if h == nil {
		b.SetUnknown("present", noHost)
		return b
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.radio
	if why := unusable(h, s, h.btMaxAge, DefaultBluetoothMaxAge, "Bluetooth"); why != "" {
		b.SetUnknown("present", why)
		return b
	}
	r := s.v
	present, powered := r.present, r.powered
	b.Present, b.Powered = &present, &powered
	if !present {
		return b
	}
	b.Adapter = r.adapter
	if r.adapterUnknown != "" {
		b.SetUnknown("adapter", r.adapterUnknown)
	}
	if why := unusable(h, h.devices, h.btMaxAge, DefaultBluetoothMaxAge, "the Bluetooth devices"); why != "" {
		b.SetUnknown("devices", why)
		return b
	}
	d := h.devices.v
	switch {
	case len(d.devices) == 0 && !powered:
		// BluetoothAdapter.getBondedDevices is empty whenever the
		// adapter is off, so an empty list says nothing then.
		b.SetUnknown("devices", "Android lists no paired devices while Bluetooth is off")
	default:
		b.Devices = append([]protocol.BluetoothDevice(nil), d.devices...)
		if d.dropped > 0 {
			b.SetUnknown("devices", fmt.Sprintf("the host app reported %d more devices than the %d a report carries",
				d.dropped, protocol.MaxBluetoothDevices))
		}
	}
	return b
}

// NormalizeAddress accepts a Bluetooth address as six hexadecimal octets
// separated by ':' or '-', in either case, and returns it as Android and
// BlueZ print it, "AA:BB:CC:DD:EE:FF".
func NormalizeAddress(s string) (string, error) {
	if len(s) != 17 {
		return "", fmt.Errorf("Bluetooth address %q: want AA:BB:CC:DD:EE:FF", input.Clip(s, 32))
	}
	out := make([]byte, 17)
	sep := s[2]
	for i := 0; i < 17; i++ {
		c := s[i]
		if i%3 == 2 {
			if c != sep || (c != ':' && c != '-') {
				return "", fmt.Errorf("Bluetooth address %q: want AA:BB:CC:DD:EE:FF", s)
			}
			out[i] = ':'
			continue
		}
		switch {
		case c >= '0' && c <= '9', c >= 'A' && c <= 'F':
		case c >= 'a' && c <= 'f':
			c -= 'a' - 'A'
		default:
			return "", fmt.Errorf("Bluetooth address %q: want AA:BB:CC:DD:EE:FF", s)
		}
		out[i] = c
	}
	return string(out), nil
}

// cleanText makes text from the host app (device names come from the
// remote devices themselves) safe to log and show: valid UTF-8, no
// control characters, at most max bytes.
func cleanText(s string, limit int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
	return input.Clip(strings.TrimSpace(s), limit)
}

// formatAge prints a report's age the way a person would say it: "5m",
// "1h30m", "45s".
func formatAge(d time.Duration) string {
	s := d.Round(time.Second).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
