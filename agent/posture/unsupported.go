package posture

import (
	"context"
	"errors"

	"github.com/cordon-mdm/cordon/protocol"
)

// unsupported answers every section as unknown with one reason. Platforms
// embed it and override what they can read, so a section nobody has
// written a collector for still says why it is empty.
type unsupported struct{ reason string }

func (u unsupported) lock(context.Context) *protocol.LockState {
	l := &protocol.LockState{State: protocol.LockUnknown}
	l.SetUnknown("state", u.reason)
	l.SetUnknown("idle_seconds", u.reason)
	return l
}

func (u unsupported) lockPolicy(context.Context) *protocol.LockPolicy {
	l := &protocol.LockPolicy{}
	l.SetUnknown("enabled", u.reason)
	l.SetUnknown("timeout_seconds", u.reason)
	return l
}

func (u unsupported) disk(context.Context) *protocol.DiskEncryption {
	d := &protocol.DiskEncryption{State: protocol.DiskUnknown}
	d.SetUnknown("state", u.reason)
	return d
}

func (u unsupported) patch(context.Context) *protocol.PatchLevel {
	p := &protocol.PatchLevel{}
	for _, f := range []string{"pending_security", "last_update", "reboot_required"} {
		p.SetUnknown(f, u.reason)
	}
	return p
}

func (u unsupported) bluetooth(context.Context) *protocol.Bluetooth {
	b := &protocol.Bluetooth{}
	b.SetUnknown("present", u.reason)
	return b
}

func (u unsupported) hygiene(context.Context) *protocol.Hygiene {
	h := &protocol.Hygiene{}
	for _, f := range []string{"firewall_on", "antimalware_on", "secure_boot", "rooted_suspected"} {
		h.SetUnknown(f, u.reason)
	}
	return h
}

func (u unsupported) watchLock(context.Context, func()) error { return errors.ErrUnsupported }

func (u unsupported) close() error { return nil }
