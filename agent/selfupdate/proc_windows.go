//go:build windows

package selfupdate

import (
	"context"
	"os"
	"os/exec"
	"syscall"
)

const (
	createNewProcessGroup = 0x00000200
	detachedProcess       = 0x00000008
)

func detached() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{CreationFlags: createNewProcessGroup | detachedProcess}
}

// reexec starts exe with args and exits: Windows has no exec in place.
// The watchdog then watches a process id that has ended; the new build
// records its own when it starts (Started).
func reexec(exe string, args []string) error {
	cmd := exec.Command(exe, args[1:]...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	os.Exit(0)
	return nil
}

func restartService(ctx context.Context, name string) error {
	return exec.CommandContext(ctx, "powershell", "-NoProfile", "-Command", "Restart-Service", "-Force", "-Name", name).Run()
}
