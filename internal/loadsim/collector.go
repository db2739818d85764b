// Package loadsim is the logic of cordon-sim, the load simulator: a fleet
// of real agents (package agent, its protocol, backoff and session code)
// whose posture collector and command executor are simulated, so that
// thousands of them run in one process without touching the host.
//
// It must not link any server package: the simulator measures the server
// from the outside, as the deployed agents do (see cmd/cordon-sim's
// dependency test).
package loadsim

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/cordon-mdm/cordon/protocol"
)

// Platform is one kind of simulated device: what its reports say.
type Platform struct {
	GOOS, Arch, Name, Version, Build, Kernel string
	DiskScheme, DiskCipher, Firewall         string
	Antimalware                              []string
	Desktop                                  bool // root detection does not apply
}

// Platforms are the kinds a fleet is spread over, roughly as a police
// agency's: mostly Windows laptops, then phones, Linux MDTs and Macs.
var Platforms = []Platform{
	{GOOS: "windows", Arch: "amd64", Name: "Windows 11 Enterprise", Version: "23H2", Build: "22631.4602",
		DiskScheme: "bitlocker", DiskCipher: "xts-aes-256", Firewall: "windows-firewall", Antimalware: []string{"Microsoft Defender"}, Desktop: true},
	{GOOS: "windows", Arch: "amd64", Name: "Windows 10 Enterprise", Version: "22H2", Build: "19045.5247",
		DiskScheme: "bitlocker", DiskCipher: "xts-aes-128", Firewall: "windows-firewall", Antimalware: []string{"Microsoft Defender"}, Desktop: true},
	{GOOS: "android", Arch: "arm64", Name: "Android", Version: "14", Build: "UP1A.231005.007",
		DiskScheme: "android-fbe", DiskCipher: "aes-256-xts"},
	{GOOS: "linux", Arch: "amd64", Name: "Debian GNU/Linux", Version: "12", Kernel: "6.1.0-28-amd64",
		DiskScheme: "luks2", DiskCipher: "aes-xts-plain64", Firewall: "nftables", Antimalware: []string{"clamd"}, Desktop: true},
	{GOOS: "darwin", Arch: "arm64", Name: "macOS", Version: "15.2", Build: "24C101",
		DiskScheme: "filevault", DiskCipher: "aes-xts", Firewall: "alf", Antimalware: []string{"XProtect"}, Desktop: true},
}

// Device is one simulated device's state: its collector and its
// executor share it, so a lock command shows in the next report.
type Device struct {
	mu        sync.Mutex
	index     int
	platform  Platform
	hostname  string
	locked    bool
	lockSince time.Time
	peers     []protocol.BluetoothDevice
	pending   int
	changed   func() // the agent's lock watcher callback, once it watches
	lockEvery time.Duration
	version   string
}

// NewDevice makes device i of a fleet. lockEvery is the mean time
// between the user's lock and unlock changes; zero means never.
func NewDevice(i int, lockEvery time.Duration, version string) *Device {
	r := rand.New(rand.NewPCG(uint64(i), 0x636f72646f6e)) // the same device every run
	d := &Device{index: i, platform: Platforms[i%len(Platforms)], hostname: fmt.Sprintf("sim-%06d", i),
		lockSince: time.Now().Add(-time.Duration(r.IntN(3600)) * time.Second), lockEvery: lockEvery,
		pending: r.IntN(3), version: version}
	for j := range r.IntN(4) {
		d.peers = append(d.peers, protocol.BluetoothDevice{
			Address: fmt.Sprintf("0C:%02X:%02X:%02X:%02X:%02X", i>>24&0xff, i>>16&0xff, i>>8&0xff, i&0xff, j),
			Name:    []string{"Jabra Talk 65", "Logitech K380", "Axon Body 3", "Motorola APX NEXT"}[j],
			Type:    []string{"audio-headset", "input-keyboard", "camera-video", "phone"}[j],
			// Blocked already: a fleet in its steady state, after the
			// server's allow-list has blocked every unapproved peer once
			// (unblocked peers would draw a block command per connect).
			Paired: true, Blocked: true})
	}
	return d
}

// Hostname is the name the device enrolls and reports under.
func (d *Device) Hostname() string { return d.hostname }

// Facts are what the device says about itself at enrollment.
func (d *Device) Facts() protocol.DeviceFacts {
	return protocol.DeviceFacts{Hostname: d.hostname, Platform: d.platform.GOOS + "/" + d.platform.Arch,
		OSName: d.platform.Name, OSVersion: d.platform.Version, AgentVersion: d.version,
		Serial: fmt.Sprintf("SIM%09d", d.index)}
}

// Collect is posture.Collector: a report as the platform's real collector
// would make it, with the current lock state and Bluetooth peers.
func (d *Device) Collect(context.Context) (protocol.Posture, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	pf := d.platform
	now := time.Now().UTC()
	t, f := true, false
	idle := int64(now.Sub(d.lockSince).Seconds())
	since := d.lockSince
	state := protocol.LockUnlocked
	if d.locked {
		state = protocol.LockLocked
	}
	timeout := int64(600)
	pending, total := d.pending, d.pending+5
	lastUpdate := now.Add(-72 * time.Hour).Truncate(time.Hour)
	p := protocol.Posture{
		CollectedAt: now,
		OS: protocol.OSIdentity{Name: pf.Name, Version: pf.Version, Build: pf.Build, Kernel: pf.Kernel,
			Hostname: d.hostname, AgentVersion: d.version, Platform: pf.GOOS + "/" + pf.Arch, Source: "simulated"},
		Lock:       &protocol.LockState{State: state, IdleSeconds: &idle, IdleSince: &since, Provenance: protocol.Provenance{Source: "simulated"}},
		LockPolicy: &protocol.LockPolicy{Enabled: &t, TimeoutSeconds: &timeout, Provenance: protocol.Provenance{Source: "simulated"}},
		Disk: &protocol.DiskEncryption{State: protocol.DiskEncrypted, Volume: "/", Scheme: pf.DiskScheme, Cipher: pf.DiskCipher,
			KeyBits: 512, Provenance: protocol.Provenance{Source: "simulated"}},
		Patch: &protocol.PatchLevel{PendingSecurity: &pending, PendingTotal: &total, LastUpdate: &lastUpdate, RebootRequired: &f,
			CheckedAt: &lastUpdate, Pending: []protocol.PendingUpdate{}, Provenance: protocol.Provenance{Source: "simulated"}},
		Bluetooth: &protocol.Bluetooth{Present: &t, Powered: &t, Adapter: fmt.Sprintf("0A:00:00:%02X:%02X:%02X", d.index>>16&0xff, d.index>>8&0xff, d.index&0xff),
			Devices: append([]protocol.BluetoothDevice(nil), d.peers...), Provenance: protocol.Provenance{Source: "simulated"}},
		Hygiene: &protocol.Hygiene{FirewallOn: &t, Firewall: pf.Firewall, AntimalwareOn: &t, Antimalware: pf.Antimalware,
			SecureBoot: &t, Provenance: protocol.Provenance{Source: "simulated"}},
	}
	for j := range d.pending {
		p.Patch.Pending = append(p.Patch.Pending, protocol.PendingUpdate{Name: fmt.Sprintf("security-update-%d", j),
			Severity: protocol.SeverityHigh, FirstSeen: lastUpdate})
	}
	if pf.Desktop {
		p.Hygiene.SetNotApplicable("rooted_suspected", "desktop operating system")
	} else {
		p.Hygiene.RootedSuspected = &f
	}
	switch pf.GOOS {
	case "windows":
		p.Disk.Volume = "C:"
	case "android":
		p.Patch.SecurityPatch = "2024-11-05"
		p.Hygiene.FirewallOn, p.Hygiene.AntimalwareOn = nil, nil
		p.Hygiene.SetNotApplicable("firewall_on", "no host firewall on Android")
		p.Hygiene.SetNotApplicable("antimalware_on", "the platform's app sandbox and Play Protect instead")
	}
	return p, nil
}

// WatchLock is posture.LockWatcher: the simulated user locks and unlocks
// at random, about every lockEvery, and the agent reports each change.
func (d *Device) WatchLock(ctx context.Context, changed func()) error {
	if d.lockEvery <= 0 {
		<-ctx.Done()
		return nil
	}
	for {
		// Exponential waits: changes arrive as a Poisson process, so a
		// fleet's reports do not come in lockstep.
		wait := time.Duration(rand.ExpFloat64() * float64(d.lockEvery))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		d.setLocked(!d.isLocked())
		changed()
	}
}

func (d *Device) isLocked() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.locked
}

func (d *Device) setLocked(v bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.locked != v {
		d.locked, d.lockSince = v, time.Now()
	}
}

func (d *Device) block(address string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := range d.peers {
		if d.peers[i].Address == address {
			d.peers[i].Blocked, d.peers[i].Connected = true, false
			return true
		}
	}
	return false
}
