//go:build !(linux && !android) && !darwin && !windows

package service

import (
	"errors"

	ks "github.com/kardianos/service"
)

// ErrUnsupported: no service manager Cordon knows (Android: the agent
// runs under the device's management app).
var ErrUnsupported = errors.New("cordon-agent install: no supported service manager on this system")

func options(string, Config) ks.KeyValue { return nil }
func packaged() bool                     { return false }
func managed() bool                      { return false }

type noAutostart struct{}

func newAutostart() autostart            { return noAutostart{} }
func (noAutostart) where() string        { return "" }
func (noAutostart) install(string) error { return ErrUnsupported }
func (noAutostart) uninstall() error     { return ErrUnsupported }

func afterUninstall() error { return nil }
