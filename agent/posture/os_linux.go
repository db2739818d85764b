//go:build linux && !android

package posture

import (
	"context"
	"os"
	"os/user"
	"strings"
	"sync"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/cordon-mdm/cordon/agent/internal/blockdev"
	"github.com/cordon-mdm/cordon/agent/posture/linux"
	"github.com/cordon-mdm/cordon/protocol"
)

func osIdentity(context.Context) protocol.OSIdentity {
	id := protocol.OSIdentity{Source: "/etc/os-release"}
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		b, err = os.ReadFile("/usr/lib/os-release")
	}
	if err != nil {
		id.Error = "os-release unreadable: " + err.Error()
	} else {
		kv := parseOSRelease(string(b))
		id.Name = kv["NAME"]
		id.Version = kv["VERSION_ID"]
		id.Build = kv["VERSION"]
		if v := kv["BUILD_ID"]; v != "" {
			id.Build = v
		}
	}
	if k, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		id.Kernel = strings.TrimSpace(string(k))
	}
	return id
}

// linuxPlatform reads a desktop Linux system. It holds one system-bus
// connection for logind and BlueZ, made on first use and again after it
// drops, so an agent started before D-Bus recovers by itself.
type linuxPlatform struct {
	mu   sync.Mutex
	conn *dbus.Conn
	fs   LinuxRoot
}

// LinuxRoot is where the desktop Linux platform reads from and how it
// runs tools: the machine itself in production; in tests, fixture trees
// and a runner, so that the real collectors run end to end against a
// machine the test describes (a LUKS root, a firewall) without touching
// the one it runs on. Empty fields keep the production value.
type LinuxRoot struct {
	// Root prefixes the files the patch and hygiene collectors read
	// (/usr/bin/apt-get, /var/log/apt, /proc, /sys/firmware/efi, ...).
	Root string
	// Sys, Mountinfo and Dev are the disk walk's sysfs, mount table and
	// device directory.
	Sys, Mountinfo, Dev string
	// Run runs apt-get, nft, ufw, cryptsetup, gsettings.
	Run linux.Runner
	// Home is the home directory of the session's user, where the lock
	// policy is read (KDE's kscreenlockerrc).
	Home func(user string) (string, error)
}

func (r LinuxRoot) withDefaults() LinuxRoot {
	def := func(v *string, d string) {
		if *v == "" {
			*v = d
		}
	}
	def(&r.Root, "/")
	def(&r.Sys, "/sys")
	def(&r.Mountinfo, "/proc/self/mountinfo")
	def(&r.Dev, "/dev")
	if r.Run == nil {
		r.Run = linux.Exec
	}
	if r.Home == nil {
		r.Home = func(name string) (string, error) {
			u, err := user.Lookup(name)
			if err != nil {
				return "", err
			}
			return u.HomeDir, nil
		}
	}
	return r
}

// WithLinuxRoot re-roots the desktop Linux platform's paths and tool
// runner (for tests of the real collectors).
func WithLinuxRoot(r LinuxRoot) Option {
	return func(s *System) { s.p = &linuxPlatform{fs: r.withDefaults()} }
}

func newPlatform() platform {
	return &linuxPlatform{fs: LinuxRoot{}.withDefaults()}
}

func (p *linuxPlatform) bus() *dbus.Conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn != nil && p.conn.Connected() {
		return p.conn
	}
	// ConnectSystemBus honours DBUS_SYSTEM_BUS_ADDRESS, which tests set.
	c, err := dbus.ConnectSystemBus()
	if err != nil {
		return nil
	}
	p.conn = c
	return c
}

func (p *linuxPlatform) identity(ctx context.Context) protocol.OSIdentity { return osIdentity(ctx) }

func (p *linuxPlatform) lock(ctx context.Context) *protocol.LockState {
	return linux.Lock(ctx, p.bus(), time.Now())
}

func (p *linuxPlatform) lockPolicy(ctx context.Context) *protocol.LockPolicy {
	conn := p.bus()
	if conn == nil {
		lp := &protocol.LockPolicy{}
		lp.SetUnknown("enabled", "no system D-Bus connection to find the session")
		lp.SetUnknown("timeout_seconds", "no system D-Bus connection to find the session")
		return lp
	}
	sess, err := linux.ActiveSession(ctx, conn)
	if err != nil {
		sess = linux.Session{}
	}
	home := ""
	if sess.User != "" {
		if h, err := p.fs.Home(sess.User); err == nil {
			home = h
		}
	}
	return linux.LockPolicy(ctx, sess, home, p.fs.Run)
}

func (p *linuxPlatform) disk(ctx context.Context) *protocol.DiskEncryption {
	return linux.Disk(ctx, linux.System{Sys: p.fs.Sys, Mountinfo: p.fs.Mountinfo, Dev: p.fs.Dev,
		DevNum: blockdev.Number, LuksDump: p.luksDump})
}

func (p *linuxPlatform) luksDump(ctx context.Context, dev string, json bool) ([]byte, error) {
	if json {
		return p.fs.Run(ctx, "cryptsetup", "luksDump", "--dump-json-metadata", dev)
	}
	return p.fs.Run(ctx, "cryptsetup", "luksDump", dev)
}

func (p *linuxPlatform) patch(ctx context.Context) *protocol.PatchLevel {
	return linux.Patch(ctx, linux.Paths{Root: p.fs.Root}, p.fs.Run, time.Now())
}

func (p *linuxPlatform) bluetooth(ctx context.Context) *protocol.Bluetooth {
	return linux.Bluetooth(ctx, p.bus())
}

func (p *linuxPlatform) hygiene(ctx context.Context) *protocol.Hygiene {
	return linux.Hygiene(ctx, linux.Paths{Root: p.fs.Root}, p.fs.Run)
}

func (p *linuxPlatform) watchLock(ctx context.Context, changed func()) error {
	// A dropped bus ends one watch; keep watching on a fresh connection.
	for {
		linux.WatchLock(ctx, p.bus(), changed)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(5 * time.Second):
		}
	}
}

func (p *linuxPlatform) close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn != nil {
		return p.conn.Close()
	}
	return nil
}
