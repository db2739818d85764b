package linux

import (
	"context"
	"os/exec"
	"time"
)

// Runner runs a command and returns its standard output. Tests replace it
// with recorded outputs; production uses Exec.
type Runner func(ctx context.Context, name string, args ...string) ([]byte, error)

// Exec runs commands for real, each bounded so a hung tool cannot stall a
// report.
func Exec(ctx context.Context, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = []string{"LC_ALL=C", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	return cmd.Output()
}
