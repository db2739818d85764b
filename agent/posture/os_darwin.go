//go:build darwin

package posture

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"time"

	"github.com/cordon-mdm/cordon/agent/posture/macos"
	"github.com/cordon-mdm/cordon/protocol"
)

// toolTimeout bounds each tool run: softwareupdate -l can hang on a dead
// network and system_profiler on a wedged Bluetooth daemon, and one stuck
// tool must not hold up the whole report.
const toolTimeout = 20 * time.Second

// run runs a tool by absolute path, so that a PATH set by whoever
// started the agent cannot substitute another program for it.
func run(ctx context.Context, label string, path string, args ...string) macos.Output {
	ctx, cancel := context.WithTimeout(ctx, toolTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// The parsers read the tools' English messages.
	cmd.Env = append(os.Environ(), "LANG=C", "LC_ALL=C")
	err := cmd.Run()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = errors.New("timed out after " + toolTimeout.String())
	}
	return macos.Output{Command: label, Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), Err: err}
}

// asConsoleUser runs a tool in the console user's login session and as
// that user. The screen lock and screen saver settings belong to the
// user: read as root (the agent runs as a launch daemon) they would be
// root's own, which nobody uses.
func asConsoleUser(ctx context.Context, label, path string, args ...string) macos.Output {
	if os.Geteuid() != 0 {
		return run(ctx, label, path, args...)
	}
	root := run(ctx, macos.CmdIORegRoot, "/usr/sbin/ioreg", "-n", "Root", "-d1", "-a")
	if root.Err != nil {
		return macos.Output{Command: label, Err: errors.New("finding the console user: " + root.Err.Error())}
	}
	cs, err := macos.ParseConsoleSession(root.Stdout)
	if err != nil {
		return macos.Output{Command: label, Err: errors.New("finding the console user: " + err.Error())}
	}
	if cs == nil || cs.User == "" {
		return macos.Output{Command: label, Err: errors.New("no user logged in on the console")}
	}
	uid := strconv.FormatInt(cs.UID, 10)
	argv := append([]string{"asuser", uid, "/usr/bin/sudo", "-n", "-u", "#" + uid, "--", path}, args...)
	return run(ctx, label, "/bin/launchctl", argv...)
}

func osIdentity(ctx context.Context) protocol.OSIdentity {
	return macos.Identity(
		run(ctx, macos.CmdSwVers, "/usr/bin/sw_vers"),
		run(ctx, "uname -r", "/usr/bin/uname", "-r"))
}

// darwinPlatform reads macOS by running its own tools; package macos
// parses what they print. Lock changes have no notification the agent
// can subscribe to without a GUI session, so watchLock stays
// unsupported and the agent polls the lock instead.
type darwinPlatform struct{ unsupported }

func newPlatform() platform {
	return darwinPlatform{unsupported{reason: "not collected on " + runtime.GOOS + " yet"}}
}

func (darwinPlatform) identity(ctx context.Context) protocol.OSIdentity { return osIdentity(ctx) }

func (darwinPlatform) lock(ctx context.Context) *protocol.LockState {
	root := run(ctx, macos.CmdIORegRoot, "/usr/sbin/ioreg", "-n", "Root", "-d1", "-a")
	hid := run(ctx, macos.CmdIORegHID, "/usr/sbin/ioreg", "-c", "IOHIDSystem", "-d", "4", "-a")
	return macos.Lock(root, hid, time.Now())
}

func (darwinPlatform) lockPolicy(ctx context.Context) *protocol.LockPolicy {
	return macos.LockPolicy(
		asConsoleUser(ctx, macos.CmdScreenLock, "/usr/sbin/sysadminctl", "-screenLock", "status"),
		asConsoleUser(ctx, macos.CmdSaverIdle, "/usr/bin/defaults", "-currentHost", "read", "com.apple.screensaver", "idleTime"),
		run(ctx, macos.CmdPowerSetting, "/usr/bin/pmset", "-g"))
}

func (darwinPlatform) disk(ctx context.Context) *protocol.DiskEncryption {
	return macos.Disk(run(ctx, macos.CmdFileVault, "/usr/bin/fdesetup", "status"))
}

func (darwinPlatform) patch(ctx context.Context) *protocol.PatchLevel {
	sw := run(ctx, macos.CmdSwVers, "/usr/bin/sw_vers")
	updates := run(ctx, macos.CmdSoftwareUpdate, "/usr/sbin/softwareupdate", "-l")
	checked := time.Now()
	hist := macos.Output{Command: macos.InstallHistory}
	hist.Stdout, hist.Err = os.ReadFile(macos.InstallHistory)
	return macos.Patch(sw, updates, hist, checked)
}

func (darwinPlatform) bluetooth(ctx context.Context) *protocol.Bluetooth {
	return macos.Bluetooth(run(ctx, macos.CmdBluetooth, "/usr/sbin/system_profiler", "SPBluetoothDataType", "-json"))
}

func (darwinPlatform) hygiene(ctx context.Context) *protocol.Hygiene {
	fw := run(ctx, macos.CmdFirewall, "/usr/libexec/ApplicationFirewall/socketfilterfw", "--getglobalstate")
	sip := run(ctx, macos.CmdSIP, "/usr/bin/csrutil", "status")
	// Not found at any known path is "absent"; any other failure to look
	// leaves it unknown.
	var xp error
	bundle := ""
	for _, p := range macos.XProtectPaths {
		_, err := os.Stat(p)
		if err == nil {
			xp, bundle = nil, p
			break
		}
		if xp == nil || errors.Is(xp, fs.ErrNotExist) {
			xp = err
		}
	}
	return macos.Hygiene(fw, sip, xp, xprotectData(ctx, bundle))
}

// xprotectData reads the sources of XProtect's signature date: the
// xprotect command where it exists (macOS 15+), else the bundle's
// Info.plist and the install history (see macos.XProtectData).
func xprotectData(ctx context.Context, bundle string) macos.XProtectData {
	d := macos.XProtectData{Now: time.Now()}
	if _, err := os.Stat(macos.XProtectTool); err == nil {
		d.Tool = run(ctx, macos.CmdXProtectVersion, macos.XProtectTool, "version", "--json")
		if d.Tool.Err != nil {
			d.ToolText = run(ctx, macos.CmdXProtectVersionText, macos.XProtectTool, "version")
		}
		return d
	} else if !errors.Is(err, fs.ErrNotExist) {
		// It may be there: do not fall back to the old sources, which
		// describe a copy macOS 15 does not use.
		d.Tool = macos.Output{Command: macos.CmdXProtectVersion, Err: err}
		return d
	}
	if bundle != "" {
		info := bundle + "/Contents/Info.plist"
		d.Info = macos.Output{Command: "XProtect.bundle/Contents/Info.plist"}
		d.Info.Stdout, d.Info.Err = os.ReadFile(info)
		if st, err := os.Stat(info); err == nil {
			d.InfoModTime = st.ModTime()
		}
	}
	d.History = macos.Output{Command: macos.InstallHistory}
	d.History.Stdout, d.History.Err = os.ReadFile(macos.InstallHistory)
	return d
}
