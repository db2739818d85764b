package android

import (
	"fmt"
	"strings"
	"time"

	"github.com/cordon-mdm/cordon/protocol"
)

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
