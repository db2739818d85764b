package main

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"github.com/cordon-mdm/cordon/agent/localapi"
	"github.com/cordon-mdm/cordon/agent/tray"
)

// tray runs in the user's session and talks to the agent service over
// its local socket; it holds no key and no connection of its own.
func runTray(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("cordon-agent tray", flag.ContinueOnError)
	socket := fs.String("socket", "", "the agent's local socket (default: the service's, then a per-user agent's)")
	browser := fs.String("browser", "", "program to open the report form with (default: the desktop's)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	o := tray.Options{Agent: localapi.Client{Socket: *socket}, Log: logger}
	if *browser != "" {
		o.Open = func(url string) error { return exec.Command(*browser, url).Start() }
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return tray.Run(ctx, o)
}
