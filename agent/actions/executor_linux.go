//go:build linux && !android

package actions

import (
	"errors"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/cordon-mdm/cordon/agent/posture/linux"
)

// callLimit bounds the D-Bus calls of one command, so a hung logind or
// bluetoothd cannot hold it forever.
const callLimit = 5 * time.Second

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

func isDBusError(err error, name string) bool {
	var de dbus.Error
	if errors.As(err, &de) {
		return de.Name == name
	}
	var dp *dbus.Error
	return errors.As(err, &dp) && dp.Name == name
}
