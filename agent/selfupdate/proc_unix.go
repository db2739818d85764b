//go:build !windows

package selfupdate

import (
	"context"
	"os"
	"os/exec"
	"runtime"
	"syscall"
)

func detached() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setsid: true} }

// reexec replaces this process with exe (same pid, open descriptors
// without close-on-exec kept: the log's stderr).
func reexec(exe string, args []string) error {
	return syscall.Exec(exe, args, os.Environ())
}

// restartService asks the service manager to restart the agent's
// service (the watchdog runs outside the agent's unit: StartWatchdog).
func restartService(ctx context.Context, name string) error {
	var cmd *exec.Cmd
	if runtime.GOOS == "darwin" {
		cmd = exec.CommandContext(ctx, "launchctl", "kickstart", "-k", "system/"+name)
	} else {
		cmd = exec.CommandContext(ctx, "systemctl", "restart", name)
	}
	return cmd.Run()
}
