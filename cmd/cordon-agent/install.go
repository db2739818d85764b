package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/cordon-mdm/cordon/agent/service"
	"github.com/cordon-mdm/cordon/agent/state"
)

// serviceFlags are the flags of `run` that install writes into the
// service's arguments; only those given are written, so the service
// keeps run's defaults for the rest.
func serviceFlags(name string) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("cordon-agent "+name, flag.ContinueOnError)
	dir := fs.String("state", state.Default(), "state directory the service runs on")
	fs.String("log-level", "info", "the service's log level: debug, info, warn or error")
	fs.String("socket", "", "the service's local socket (default: run's)")
	addKeyFlags(fs)
	fipsFlag(fs)
	return fs, dir
}

// install registers the agent as a system service (systemd, launchd,
// the Windows SCM) running `cordon-agent run` with the given flags, sets
// up the tray's autostart for every user session, and starts it once
// the state dir is enrolled.
func install(args []string, stdout, stderr io.Writer) error {
	fs, dir := serviceFlags("install")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("install: unexpected argument %q", fs.Arg(0))
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	var runArgs []string
	fs.Visit(func(f *flag.Flag) {
		v := f.Value.String()
		if f.Name == "state" {
			v = abs
		}
		runArgs = append(runArgs, "--"+f.Name+"="+v)
	})
	_, notEnrolled := (state.Dir{Path: abs}).LoadConfig()
	res, err := service.Install(service.Config{Args: runArgs, State: abs, NoStart: notEnrolled != nil})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "installed the %s service %s (cordon-agent run %v)\ntray autostart %s\n", res.System, service.Name, runArgs, res.Autostart)
	if !res.Started {
		fmt.Fprintf(stderr, "note: %s holds no enrollment yet (%v), so the service is registered but not started: run `cordon-agent enroll --state %s ...`, then start it (or reboot)\n", abs, notEnrolled, abs)
	}
	return nil
}

// uninstall stops and removes the service and the tray's autostart; the
// state dir, with the device's identity, stays.
func uninstall(args []string, stdout io.Writer) error {
	fs, _ := serviceFlags("uninstall")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := service.Uninstall(service.Config{}); err != nil {
		if errors.Is(err, os.ErrPermission) {
			return fmt.Errorf("%w (run it as root or Administrator)", err)
		}
		return err
	}
	fmt.Fprintf(stdout, "removed the %s service and the tray autostart; the state dir is kept\n", service.Name)
	return nil
}
