//go:build !((linux && !android) || windows || (darwin && cgo))

package tray

import (
	"context"
	"errors"
)

// Run: there is no tray here. On Android the host app shows status and
// reporting; a macOS agent built without cgo (cross-compiled) has no tray.
func Run(context.Context, Options) error {
	return errors.New("no tray on this platform or build: use `cordon-agent report`")
}
