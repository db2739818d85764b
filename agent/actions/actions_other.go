//go:build !linux || android

package actions

import (
	"context"
	"runtime"

	"github.com/cordon-mdm/cordon/protocol"
)

// otherExecutor answers every command as not done with the reason: a
// result of "failed" with an honest message is worth more to the
// dispatcher than a silent success.
type otherExecutor struct {
	cfg WipeConfig
}

// New returns the executor for this platform.
func New(cfg WipeConfig, opts ...Option) Executor {
	return &otherExecutor{cfg: cfg}
}

func (e *otherExecutor) Lock(context.Context) Outcome {
	switch runtime.GOOS {
	case "windows":
		return Outcome{Message: "LockWorkStation only works from the user's interactive session and the agent runs as a service; the user-session helper is not implemented yet",
			Detail: map[string]string{"lock_state": protocol.LockUnknown}}
	case "darwin":
		return Outcome{Message: "screen lock on darwin goes through Apple MDM (DeviceLock); not available to the agent",
			Detail: map[string]string{"lock_state": protocol.LockUnknown}}
	}
	return Outcome{Message: "remote lock is not implemented on " + runtime.GOOS, Detail: map[string]string{"lock_state": protocol.LockUnknown}}
}

func (e *otherExecutor) BluetoothBlock(context.Context, string) Outcome {
	return Outcome{Message: "Bluetooth blocking is not implemented on " + runtime.GOOS}
}

func (e *otherExecutor) Plan(context.Context) (WipePlan, error) {
	return WipePlan{
		CJIPaths: append([]string(nil), e.cfg.CJIPaths...),
		PowerOff: e.cfg.PowerOff,
		Notes:    []string{eraseUnavailable()},
	}, nil
}

func (e *otherExecutor) Erase(context.Context, WipePlan) Outcome {
	return Outcome{Message: eraseUnavailable()}
}

func eraseUnavailable() string {
	switch runtime.GOOS {
	case "darwin":
		return "remote wipe on darwin goes through Apple MDM (FileVault erase); not available to the agent"
	case "windows":
		return "remote wipe on windows is MDM_RemoteWipe doWipeProtected through the WMI bridge, which is not implemented yet"
	}
	return "erasing is not available to the agent on " + runtime.GOOS
}
