//go:build linux && !android

package actions

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/godbus/dbus/v5"
	"golang.org/x/sys/unix"

	"github.com/cordon-mdm/cordon/agent/posture/linux"
	"github.com/cordon-mdm/cordon/protocol"
)

const (
	login1Dest   = "org.freedesktop.login1"
	login1Path   = dbus.ObjectPath("/org/freedesktop/login1")
	sessionIface = "org.freedesktop.login1.Session"
	managerIface = "org.freedesktop.login1.Manager"
	bluezDest    = "org.bluez"
	deviceIface  = "org.bluez.Device1"
	propsIface   = "org.freedesktop.DBus.Properties"
	callLimit    = 5 * time.Second
	lockPoll     = 100 * time.Millisecond
)

type linuxExecutor struct {
	cfg WipeConfig
	o   options
}

// New returns the executor for this platform.
func New(cfg WipeConfig, opts ...Option) Executor {
	o := newOptions(opts)
	if o.run == nil {
		o.run = Runner(linux.Exec)
	}
	return &linuxExecutor{cfg: cfg, o: o}
}

// bus returns a connection and how to release it: the executor's own
// connection is closed after each command, an injected one is not.
func (e *linuxExecutor) bus() (*dbus.Conn, func(), error) {
	if e.o.bus != nil {
		c, err := e.o.bus()
		if err == nil && c == nil {
			err = errors.New("no connection")
		}
		return c, func() {}, err
	}
	// ConnectSystemBus honours DBUS_SYSTEM_BUS_ADDRESS, which tests set.
	c, err := dbus.ConnectSystemBus()
	if err != nil {
		return nil, nil, err
	}
	return c, func() { c.Close() }, nil
}

// Lock asks logind to lock the active session, then waits for the
// session's LockedHint. logind only relays the request to the desktop's
// screen locker, which sets LockedHint once the screen is actually
// covered; a session without a locker that listens never reads locked,
// and that is reported rather than assumed.
func (e *linuxExecutor) Lock(ctx context.Context) Outcome {
	conn, release, err := e.bus()
	if err != nil {
		return Outcome{Message: "no system D-Bus connection: " + err.Error(), Detail: map[string]string{"lock_state": protocol.LockUnknown}}
	}
	defer release()
	detail := map[string]string{}
	var requestErrs []string
	requested := false
	if sess, err := linux.ActiveSession(ctx, conn); err != nil {
		requestErrs = append(requestErrs, "find session: "+err.Error())
	} else {
		detail["session"] = string(sess.Path)
		cctx, cancel := context.WithTimeout(ctx, callLimit)
		err = conn.Object(login1Dest, sess.Path).CallWithContext(cctx, sessionIface+".Lock", 0).Err
		cancel()
		if err == nil {
			requested = true
			detail["method"] = "Session.Lock"
		} else {
			requestErrs = append(requestErrs, "Session.Lock: "+err.Error())
		}
	}
	if !requested {
		// LockSessions reaches every session, including one the seat
		// lookup missed.
		cctx, cancel := context.WithTimeout(ctx, callLimit)
		err = conn.Object(login1Dest, login1Path).CallWithContext(cctx, managerIface+".LockSessions", 0).Err
		cancel()
		if err != nil {
			requestErrs = append(requestErrs, "Manager.LockSessions: "+err.Error())
			detail["lock_state"] = linux.Lock(ctx, conn, time.Now()).State
			return Outcome{Message: "logind refused to lock: " + strings.Join(requestErrs, "; "), Detail: detail}
		}
		detail["method"] = "Manager.LockSessions"
	}

	deadline := time.Now().Add(e.o.lockTimeout)
	var last *protocol.LockState
	for {
		last = linux.Lock(ctx, conn, time.Now())
		if last.State == protocol.LockLocked {
			detail["lock_state"] = last.State
			return Outcome{Done: true, Message: "session locked", Detail: detail}
		}
		if !time.Now().Before(deadline) || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(lockPoll):
		}
	}
	detail["lock_state"] = last.State
	seen := last.State
	if why := last.Unknown["state"]; why != "" {
		seen += " (" + why + ")"
	}
	return Outcome{Message: fmt.Sprintf("lock requested but the session still reads %s after %s", seen, e.o.lockTimeout), Detail: detail}
}

// NormalizeAddress returns a Bluetooth address as BlueZ spells it,
// AA:BB:CC:DD:EE:FF, accepting lower case and "-" or no separators.
func NormalizeAddress(s string) (string, error) {
	hex := strings.NewReplacer(":", "", "-", "").Replace(strings.TrimSpace(s))
	if len(hex) != 12 {
		return "", fmt.Errorf("%q is not a Bluetooth address", s)
	}
	if _, err := strconv.ParseUint(hex, 16, 64); err != nil {
		return "", fmt.Errorf("%q is not a Bluetooth address", s)
	}
	hex = strings.ToUpper(hex)
	parts := make([]string, 6)
	for i := range parts {
		parts[i] = hex[2*i : 2*i+2]
	}
	return strings.Join(parts, ":"), nil
}

// BluetoothBlock sets the peer's Blocked property, which makes bluetoothd
// drop it and refuse it from then on (and survives reboots), then
// disconnects it in case the block did not. Done means both read back as
// wanted.
func (e *linuxExecutor) BluetoothBlock(ctx context.Context, address string) Outcome {
	addr, err := NormalizeAddress(address)
	if err != nil {
		return Outcome{Message: err.Error()}
	}
	conn, release, err := e.bus()
	if err != nil {
		return Outcome{Message: "no system D-Bus connection: " + err.Error()}
	}
	defer release()
	cctx, cancel := context.WithTimeout(ctx, callLimit)
	defer cancel()
	var objs map[dbus.ObjectPath]map[string]map[string]dbus.Variant
	if err := conn.Object(bluezDest, "/").CallWithContext(cctx, "org.freedesktop.DBus.ObjectManager.GetManagedObjects", 0).Store(&objs); err != nil {
		return Outcome{Message: "BlueZ GetManagedObjects: " + err.Error()}
	}
	// Every adapter that knows the peer gets the block: it could come
	// back through any radio.
	var paths []dbus.ObjectPath
	for p, ifaces := range objs {
		if d, ok := ifaces[deviceIface]; ok {
			if a, _ := d["Address"].Value().(string); strings.EqualFold(a, addr) {
				paths = append(paths, p)
			}
		}
	}
	if len(paths) == 0 {
		return Outcome{Message: fmt.Sprintf("no Bluetooth device with address %s is known to BlueZ", addr)}
	}
	detail := map[string]string{"address": addr}
	var problems []string
	blocked, connected := true, false
	for _, p := range paths {
		obj := conn.Object(bluezDest, p)
		if err := obj.CallWithContext(cctx, propsIface+".Set", 0, deviceIface, "Blocked", dbus.MakeVariant(true)).Err; err != nil {
			problems = append(problems, fmt.Sprintf("%s: set Blocked: %v", p, err))
		}
		if err := obj.CallWithContext(cctx, deviceIface+".Disconnect", 0).Err; err != nil && !isDBusError(err, "org.bluez.Error.NotConnected") {
			problems = append(problems, fmt.Sprintf("%s: Disconnect: %v", p, err))
		}
		b, errB := obj.GetProperty(deviceIface + ".Blocked")
		c, errC := obj.GetProperty(deviceIface + ".Connected")
		isBlocked, okB := b.Value().(bool)
		isConnected, okC := c.Value().(bool)
		if errB != nil || errC != nil || !okB || !okC {
			problems = append(problems, fmt.Sprintf("%s: cannot read Blocked/Connected back: %v", p, errors.Join(errB, errC)))
			blocked, connected = false, true
			continue
		}
		blocked = blocked && isBlocked
		connected = connected || isConnected
	}
	detail["blocked"] = strconv.FormatBool(blocked)
	detail["connected"] = strconv.FormatBool(connected)
	if blocked && !connected {
		return Outcome{Done: true, Message: fmt.Sprintf("%s blocked and disconnected", addr), Detail: detail}
	}
	msg := fmt.Sprintf("%s reads blocked=%t connected=%t after the block", addr, blocked, connected)
	if len(problems) > 0 {
		msg += ": " + strings.Join(problems, "; ")
	}
	return Outcome{Message: msg, Detail: detail}
}

func isDBusError(err error, name string) bool {
	var de dbus.Error
	if errors.As(err, &de) {
		return de.Name == name
	}
	var dp *dbus.Error
	return errors.As(err, &dp) && dp.Name == name
}

func (e *linuxExecutor) system() linux.System {
	return linux.System{
		Sys:       filepath.Join(e.o.root, "sys"),
		Mountinfo: filepath.Join(e.o.root, "proc/self/mountinfo"),
		Dev:       "/dev",
		DevNum:    devNum,
	}
}

func devNum(path string) (string, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return "", err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return "", fmt.Errorf("%s is not a block device", path)
	}
	return fmt.Sprintf("%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev)), nil
}

// Plan lists the LUKS headers under "/" and the configured data volumes.
// A data volume that is missing or not LUKS is skipped with a note: it
// holds no key slot to destroy, and `isLuks` stays true after luksErase,
// so "not LUKS" can never mean "already erased by us". A volume cryptsetup
// cannot examine stays in the plan, so its erase fails loudly instead of
// being skipped quietly.
func (e *linuxExecutor) Plan(ctx context.Context) (WipePlan, error) {
	p := WipePlan{CJIPaths: append([]string(nil), e.cfg.CJIPaths...), PowerOff: e.cfg.PowerOff}
	root, rootErr := linux.LuksBacking(e.system())
	switch {
	case rootErr != nil:
		rootErr = fmt.Errorf("LUKS devices under /: %w", rootErr)
		p.Notes = append(p.Notes, rootErr.Error()+"; the root filesystem may not be erased")
	case len(root) == 0:
		p.Notes = append(p.Notes, "the root filesystem is not on LUKS: nothing to erase for it")
	}
	p.LUKSDevices = append(p.LUKSDevices, root...)
	for _, v := range e.cfg.DataVolumes {
		if _, err := os.Stat(v); err != nil {
			p.Notes = append(p.Notes, fmt.Sprintf("data volume %s skipped: %v", v, errors.Unwrap(err)))
			continue
		}
		_, err := e.o.run(ctx, "cryptsetup", "isLuks", v)
		var ee *exec.ExitError
		switch {
		case err == nil:
			if !slices.Contains(p.LUKSDevices, v) {
				p.LUKSDevices = append(p.LUKSDevices, v)
			}
		case errors.As(err, &ee) && ee.ExitCode() == 1:
			p.Notes = append(p.Notes, fmt.Sprintf("data volume %s skipped: not a LUKS volume", v))
		default:
			p.LUKSDevices = append(p.LUKSDevices, v)
			p.Notes = append(p.Notes, fmt.Sprintf("data volume %s: cryptsetup isLuks could not tell (%s); erase will be attempted", v, runErr(err)))
		}
	}
	return p, rootErr
}

// runErr includes the tool's own words, which say more than an exit code.
func runErr(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) && len(bytes.TrimSpace(ee.Stderr)) > 0 {
		return fmt.Sprintf("%v: %s", err, strings.TrimSpace(string(ee.Stderr)))
	}
	return err.Error()
}

// Erase destroys every key slot of the plan's LUKS devices, then the CJI
// paths. The LUKS erase comes first because it is what makes the data
// unrecoverable, takes a second, and leaves mounted filesystems working
// (the kernel still holds their keys) for the deletions that follow.
// Done needs at least one LUKS device erased and verified and every
// deletion to succeed: deleting files from an unencrypted disk leaves
// them recoverable, which is not a wipe.
func (e *linuxExecutor) Erase(ctx context.Context, p WipePlan) Outcome {
	var erased, failed []string
	for _, dev := range p.LUKSDevices {
		if _, err := e.o.run(ctx, "cryptsetup", "luksErase", "--batch-mode", dev); err != nil {
			failed = append(failed, fmt.Sprintf("luksErase %s: %s", dev, runErr(err)))
			continue
		}
		if err := e.verifyErased(ctx, dev); err != nil {
			failed = append(failed, fmt.Sprintf("verify %s: %v", dev, err))
			continue
		}
		erased = append(erased, dev)
	}
	luksFailures := len(failed)
	deleted, missing := 0, 0
	for _, path := range p.CJIPaths {
		n, err := secureDelete(path)
		deleted += n
		switch {
		case errors.Is(err, fs.ErrNotExist):
			missing++
		case err != nil:
			failed = append(failed, err.Error())
		}
	}
	detail := map[string]string{"erased": capDetail(erased, ","), "deleted": strconv.Itoa(deleted)}
	if missing > 0 {
		detail["missing"] = strconv.Itoa(missing)
	}
	if len(failed) > 0 {
		detail["failed"] = capDetail(failed, "; ")
	}
	if len(p.Notes) > 0 {
		detail["notes"] = capDetail(p.Notes, "; ")
	}
	switch {
	case luksFailures > 0:
		return Outcome{Message: fmt.Sprintf("%d of %d LUKS devices not verified erased", luksFailures, len(p.LUKSDevices)), Detail: detail}
	case len(erased) == 0:
		return Outcome{Message: "no LUKS device to erase: the data on this device is not cryptographically erased", Detail: detail}
	case len(failed) > 0:
		return Outcome{Message: fmt.Sprintf("LUKS devices erased; %d CJI deletions failed", len(failed)), Detail: detail}
	}
	return Outcome{Done: true, Message: fmt.Sprintf("erased %d LUKS devices, deleted %d CJI files", len(erased), deleted), Detail: detail}
}

// verifyErased reads the header back: luksErase exiting 0 is a claim, an
// empty key slot table is the fact.
func (e *linuxExecutor) verifyErased(ctx context.Context, dev string) error {
	text, err := e.o.run(ctx, "cryptsetup", "luksDump", dev)
	if err != nil {
		return fmt.Errorf("luksDump: %s", runErr(err))
	}
	switch v := luksVersion(text); v {
	case "1":
		return luks1Erased(text)
	case "2":
		js, err := e.o.run(ctx, "cryptsetup", "luksDump", "--dump-json-metadata", dev)
		if err != nil {
			return fmt.Errorf("luksDump --dump-json-metadata: %s", runErr(err))
		}
		return luks2Erased(js)
	default:
		return fmt.Errorf("luksDump shows LUKS version %q", v)
	}
}

func luksVersion(dump []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(dump))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "Version" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// luks1Erased wants all eight "Key Slot N:" lines present and none
// ENABLED; a dump with no slot lines at all proves nothing.
func luks1Erased(dump []byte) error {
	slots := 0
	sc := bufio.NewScanner(bytes.NewReader(dump))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || !strings.HasPrefix(k, "Key Slot ") {
			continue
		}
		slots++
		if strings.TrimSpace(v) == "ENABLED" {
			return fmt.Errorf("%s is still enabled", k)
		}
	}
	if slots == 0 {
		return errors.New("luksDump lists no key slots")
	}
	return nil
}

func luks2Erased(js []byte) error {
	var h struct {
		Keyslots *map[string]json.RawMessage `json:"keyslots"`
	}
	if err := json.Unmarshal(js, &h); err != nil {
		return fmt.Errorf("LUKS2 metadata: %w", err)
	}
	if h.Keyslots == nil {
		return errors.New("LUKS2 metadata has no keyslots object")
	}
	if n := len(*h.Keyslots); n > 0 {
		return fmt.Errorf("%d key slots remain", n)
	}
	return nil
}

// secureDelete removes path, overwriting regular files first. It never
// follows a symlink, so a link to outside the CJI tree costs only the
// link. It returns the number of non-directory entries removed. On flash
// and copy-on-write filesystems the overwrite may land elsewhere than the
// old data; it is a best effort on top of the LUKS erase, not instead.
func secureDelete(path string) (int, error) {
	st, err := os.Lstat(path)
	if err != nil {
		return 0, err
	}
	if !st.IsDir() {
		if err := deleteEntry(path, st); err != nil {
			return 0, err
		}
		return 1, nil
	}
	n := 0
	var errs []error
	// WalkDir does not follow symlinks to directories; children are
	// handled before RemoveAll takes the emptied tree.
	walkErr := filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			errs = append(errs, err)
			return nil
		}
		if d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err == nil {
			err = deleteEntry(p, info)
		}
		if err != nil {
			errs = append(errs, err)
			return nil
		}
		n++
		return nil
	})
	if walkErr != nil {
		errs = append(errs, walkErr)
	}
	if len(errs) == 0 {
		if err := os.RemoveAll(path); err != nil {
			errs = append(errs, err)
		}
	}
	return n, errors.Join(errs...)
}

func deleteEntry(path string, st fs.FileInfo) error {
	if st.Mode().IsRegular() {
		if err := overwrite(path); err != nil {
			return fmt.Errorf("overwrite %s: %w", path, err)
		}
	}
	// Symlinks, sockets, FIFOs and device nodes are only unlinked:
	// writing through them would reach something that is not the CJI.
	return os.Remove(path)
}

func overwrite(path string) error {
	// NOFOLLOW and NONBLOCK: if the file was swapped for a symlink or a
	// FIFO since the Lstat, fail rather than write through or hang.
	f, err := os.OpenFile(path, os.O_WRONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return errors.New("no longer a regular file")
	}
	size := st.Size()
	if _, err := io.CopyN(f, rand.Reader, size); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Truncate(0); err != nil {
		return err
	}
	return f.Sync()
}
