package android

import (
	"errors"
	"fmt"
	"sync"
	"time"

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
