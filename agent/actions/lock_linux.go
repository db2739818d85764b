//go:build linux && !android

package actions

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/cordon-mdm/cordon/agent/posture/linux"
	"github.com/cordon-mdm/cordon/protocol"
)

const (
	login1Dest   = "org.freedesktop.login1"
	login1Path   = dbus.ObjectPath("/org/freedesktop/login1")
	sessionIface = "org.freedesktop.login1.Session"
	managerIface = "org.freedesktop.login1.Manager"
	lockPoll     = 100 * time.Millisecond
)

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
