//go:build linux

package localapi

import (
	"context"
	"fmt"
	"net"
	"os/user"
	"strconv"

	"golang.org/x/sys/unix"
)

type peerKey struct{}

// withPeer records the connecting process's user from SO_PEERCRED.
func withPeer(ctx context.Context, c net.Conn) context.Context {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return ctx
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return ctx
	}
	var cred *unix.Ucred
	raw.Control(func(fd uintptr) { cred, err = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) })
	if err != nil || cred == nil {
		return ctx
	}
	name := "uid " + strconv.Itoa(int(cred.Uid))
	if u, err := user.LookupId(strconv.Itoa(int(cred.Uid))); err == nil {
		name = fmt.Sprintf("%s (uid %d)", u.Username, cred.Uid)
	}
	return context.WithValue(ctx, peerKey{}, name)
}

func peerName(ctx context.Context) string {
	if n, ok := ctx.Value(peerKey{}).(string); ok {
		return n
	}
	return "local user (unidentified)"
}
