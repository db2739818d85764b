// Package linux reads a desktop Linux system's posture: logind and BlueZ
// over D-Bus, the root filesystem's encryption through sysfs and
// cryptsetup, the lock policy from gsettings or KDE, updates from apt or
// dnf, and the firewall, anti-malware and Secure Boot state. It builds on
// any OS so its tests run everywhere; posture/os_linux.go wires it in.
package linux

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/cordon-mdm/cordon/protocol"
)

const (
	login1Dest    = "org.freedesktop.login1"
	login1Path    = dbus.ObjectPath("/org/freedesktop/login1")
	seatIface     = "org.freedesktop.login1.Seat"
	sessionIface  = "org.freedesktop.login1.Session"
	managerIface  = "org.freedesktop.login1.Manager"
	propsIface    = "org.freedesktop.DBus.Properties"
	logindSource  = "logind (org.freedesktop.login1)"
	defaultSeat   = dbus.ObjectPath("/org/freedesktop/login1/seat/seat0")
	dbusCallLimit = 5 * time.Second
)

// Session is the logind session whose lock state is the device's.
type Session struct {
	Path dbus.ObjectPath
	User string
	UID  uint32
	Type string // x11, wayland, tty, ...
}

// ActiveSession finds the session in front of the user: seat0's active
// session, or else the first active session of class "user" (machines
// without seats, such as some VMs).
func ActiveSession(ctx context.Context, conn *dbus.Conn) (Session, error) {
	ctx, cancel := context.WithTimeout(ctx, dbusCallLimit)
	defer cancel()
	var active struct {
		ID   string
		Path dbus.ObjectPath
	}
	v, err := conn.Object(login1Dest, defaultSeat).GetProperty(seatIface + ".ActiveSession")
	if err == nil && v.Store(&active) == nil && active.Path != "" && active.Path != "/" {
		return describeSession(ctx, conn, active.Path)
	}
	var sessions []struct {
		ID   string
		UID  uint32
		User string
		Seat string
		Path dbus.ObjectPath
	}
	if err := conn.Object(login1Dest, login1Path).CallWithContext(ctx, managerIface+".ListSessions", 0).Store(&sessions); err != nil {
		return Session{}, fmt.Errorf("logind ListSessions: %w", err)
	}
	for _, s := range sessions {
		sess, err := describeSession(ctx, conn, s.Path)
		if err != nil {
			continue
		}
		obj := conn.Object(login1Dest, s.Path)
		act, err1 := obj.GetProperty(sessionIface + ".Active")
		class, err2 := obj.GetProperty(sessionIface + ".Class")
		if err1 == nil && err2 == nil && act.Value() == true && class.Value() == "user" {
			return sess, nil
		}
	}
	return Session{}, errors.New("no active user session in logind")
}

func describeSession(ctx context.Context, conn *dbus.Conn, path dbus.ObjectPath) (Session, error) {
	props, err := allProps(ctx, conn, login1Dest, path, sessionIface)
	if err != nil {
		return Session{}, err
	}
	s := Session{Path: path}
	if v, ok := props["Name"]; ok {
		s.User, _ = v.Value().(string)
	}
	if v, ok := props["Type"]; ok {
		s.Type, _ = v.Value().(string)
	}
	if v, ok := props["User"]; ok {
		var u struct {
			UID  uint32
			Path dbus.ObjectPath
		}
		if v.Store(&u) == nil {
			s.UID = u.UID
		}
	}
	return s, nil
}

func allProps(ctx context.Context, conn *dbus.Conn, dest string, path dbus.ObjectPath, iface string) (map[string]dbus.Variant, error) {
	var props map[string]dbus.Variant
	if err := conn.Object(dest, path).CallWithContext(ctx, propsIface+".GetAll", 0, iface).Store(&props); err != nil {
		return nil, fmt.Errorf("%s GetAll %s: %w", path, iface, err)
	}
	return props, nil
}

// Lock reads the active session's lock and idle state. now is passed in so
// tests can pin the idle arithmetic.
func Lock(ctx context.Context, conn *dbus.Conn, now time.Time) *protocol.LockState {
	l := &protocol.LockState{State: protocol.LockUnknown}
	l.Source = logindSource
	if conn == nil {
		return unknownLock(l, "no system D-Bus connection")
	}
	sess, err := ActiveSession(ctx, conn)
	if err != nil {
		return unknownLock(l, err.Error())
	}
	ctx, cancel := context.WithTimeout(ctx, dbusCallLimit)
	defer cancel()
	props, err := allProps(ctx, conn, login1Dest, sess.Path, sessionIface)
	if err != nil {
		return unknownLock(l, err.Error())
	}
	return lockFromProps(props, string(sess.Path), now)
}

// unknownLock explains both readings a missing session takes away.
func unknownLock(l *protocol.LockState, reason string) *protocol.LockState {
	l.SetUnknown("state", reason)
	l.SetUnknown("idle_seconds", reason)
	return l
}

// lockFromProps interprets a session's properties. LockedHint is set by
// the desktop's screen locker (GNOME, KDE, xss-lock via loginctl); a
// session whose locker never sets it reads as unlocked, which is why the
// source names the session.
func lockFromProps(props map[string]dbus.Variant, session string, now time.Time) *protocol.LockState {
	l := &protocol.LockState{State: protocol.LockUnknown}
	l.Source = logindSource + " session " + session
	locked, ok := props["LockedHint"].Value().(bool)
	if !ok {
		l.SetUnknown("state", "session has no LockedHint property (logind older than v230?)")
	} else if locked {
		l.State = protocol.LockLocked
	} else {
		l.State = protocol.LockUnlocked
	}
	idle, okIdle := props["IdleHint"].Value().(bool)
	since, okSince := props["IdleSinceHint"].Value().(uint64)
	switch {
	case !okIdle:
		l.SetUnknown("idle_seconds", "session has no IdleHint property")
	case !idle:
		zero := int64(0)
		l.IdleSeconds = &zero
	case !okSince || since == 0:
		l.SetUnknown("idle_seconds", "session is idle but IdleSinceHint is not set")
	default:
		t := time.UnixMicro(int64(since)).UTC()
		secs := max(int64(now.Sub(t)/time.Second), 0)
		l.IdleSeconds, l.IdleSince = &secs, &t
	}
	return l
}

// WatchLock calls changed whenever a session's LockedHint or the seat's
// active session changes, until ctx ends. It subscribes to all of
// logind's PropertiesChanged signals rather than one session's, so a
// user switch is seen too.
func WatchLock(ctx context.Context, conn *dbus.Conn, changed func()) error {
	if conn == nil {
		return errors.New("no system D-Bus connection")
	}
	opts := []dbus.MatchOption{dbus.WithMatchInterface(propsIface), dbus.WithMatchMember("PropertiesChanged"),
		dbus.WithMatchSender(login1Dest), dbus.WithMatchPathNamespace(login1Path)}
	if err := conn.AddMatchSignalContext(ctx, opts...); err != nil {
		return fmt.Errorf("subscribe to logind: %w", err)
	}
	defer conn.RemoveMatchSignalContext(context.Background(), opts...)
	ch := make(chan *dbus.Signal, 16)
	conn.Signal(ch)
	defer conn.RemoveSignal(ch)
	for {
		select {
		case <-ctx.Done():
			return nil
		case sig, ok := <-ch:
			if !ok {
				return errors.New("D-Bus connection closed")
			}
			if sig.Name != propsIface+".PropertiesChanged" || len(sig.Body) < 2 {
				continue
			}
			iface, _ := sig.Body[0].(string)
			props, _ := sig.Body[1].(map[string]dbus.Variant)
			_, lockChanged := props["LockedHint"]
			_, seatChanged := props["ActiveSession"]
			if (iface == sessionIface && lockChanged) || (iface == seatIface && seatChanged) {
				changed()
			}
		}
	}
}
