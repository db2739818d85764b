// Package service registers the agent with the operating system's service
// manager, through github.com/kardianos/service: systemd on Linux (with
// the same hardened unit the packages ship, packaging/units), launchd on
// macOS, the SCM on Windows; and it sets up the tray's autostart for every
// user session (XDG autostart entry, LaunchAgent, HKLM Run key). The
// per-OS parts are behind the small autostart interface, one file per OS.
package service

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	ks "github.com/kardianos/service"
)

// Name is the service's name everywhere: the systemd unit cordon-agent,
// the launchd label, the Windows service.
const Name = "cordon-agent"

// Config is what Install registers.
type Config struct {
	Exe   string   // the agent binary; default: this program
	Args  []string // the service's arguments after "run" (--state DIR and the key flags)
	State string   // the state dir the service uses (the unit waits for its agent.json)
	// Registered only: not started now. For a state dir not enrolled
	// yet, where an agent started would exit at once: SysV init, which
	// checks that it runs right after starting it, would call that a
	// failure, or not, by how fast the exit came.
	NoStart bool
}

// ErrPackaged: the service came with the cordon-agent package, which
// manages it; `cordon-agent install` would put a second unit beside it.
var ErrPackaged = errors.New("the cordon-agent package installed the service: it is managed by the package (dpkg/rpm), not by cordon-agent install")

// autostart puts the tray into every user session, per OS.
type autostart interface {
	install(exe string) error
	uninstall() error
	where() string // what install writes, for the message
}

func (c Config) exe() (string, error) {
	if c.Exe != "" {
		return filepath.Abs(c.Exe)
	}
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	return filepath.EvalSymlinks(exe)
}

func (c Config) service(exe string) (ks.Service, error) {
	return ks.New(noop{}, &ks.Config{
		Name:        Name,
		DisplayName: "Cordon MDM agent",
		Description: "Keeps this device enrolled with the agency's Cordon server and carries out its signed commands.",
		Executable:  exe,
		Arguments:   append([]string{"run"}, c.Args...),
		// The agent knows it runs as this service (selfupdate.ServiceEnv):
		// after an update it exits to be restarted by the manager.
		EnvVars: map[string]string{"CORDON_AGENT_SERVICE": Name},
		Option:  options(exe, c),
	})
}

// Installed is what Install did, for the command to print.
type Installed struct {
	System    string // the service manager kardianos chose (systemd, launchd, windows-service, unix-systemv...)
	Autostart string // where the tray's autostart went
	Started   bool   // whether the service was started (Config.NoStart)
}

// Install registers and (unless Config.NoStart) starts the agent's
// service, and the tray's autostart. It refuses when the package already manages the service.
func Install(c Config) (Installed, error) {
	if packaged() {
		return Installed{}, ErrPackaged
	}
	exe, err := c.exe()
	if err != nil {
		return Installed{}, err
	}
	s, err := c.service(exe)
	if err != nil {
		return Installed{}, err
	}
	res := Installed{System: s.Platform()}
	if err := s.Install(); err != nil {
		return res, fmt.Errorf("install the %s service: %w", res.System, err)
	}
	a := newAutostart()
	res.Autostart = a.where()
	if err := a.install(exe); err != nil {
		return res, fmt.Errorf("tray autostart %s: %w", res.Autostart, err)
	}
	if c.NoStart {
		return res, nil
	}
	if err := s.Start(); err != nil {
		return res, fmt.Errorf("start the %s service: %w", res.System, err)
	}
	res.Started = true
	return res, nil
}

// Uninstall stops and removes the service and the tray's autostart. The
// state dir (the device's identity) stays.
func Uninstall(c Config) error {
	if packaged() {
		return ErrPackaged
	}
	exe, err := c.exe()
	if err != nil {
		return err
	}
	s, err := c.service(exe)
	if err != nil {
		return err
	}
	if st, err := s.Status(); err == nil && st == ks.StatusRunning {
		if err := s.Stop(); err != nil {
			return fmt.Errorf("stop the service: %w", err)
		}
	}
	var errs []error
	if err := s.Uninstall(); err != nil {
		errs = append(errs, fmt.Errorf("remove the service: %w", err))
	} else if err := afterUninstall(); err != nil {
		errs = append(errs, fmt.Errorf("remove the service's leftovers: %w", err))
	}
	if err := newAutostart().uninstall(); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("remove the tray autostart: %w", err))
	}
	return errors.Join(errs...)
}

// Run runs run. Where the service manager needs a conversation with the
// process (the Windows SCM), it runs under kardianos: ctx ends when the
// manager asks the service to stop. Elsewhere it simply calls run.
func Run(ctx context.Context, run func(context.Context) error) error {
	if !managed() {
		return run(ctx)
	}
	p := &program{run: run, done: make(chan error, 1)}
	p.ctx, p.cancel = context.WithCancel(ctx)
	s, err := ks.New(p, &ks.Config{Name: Name})
	if err != nil {
		return err
	}
	if err := s.Run(); err != nil {
		return err
	}
	select {
	case err := <-p.done:
		return err
	default:
		return nil
	}
}

type program struct {
	run    func(context.Context) error
	ctx    context.Context
	cancel context.CancelFunc
	done   chan error
}

func (p *program) Start(s ks.Service) error {
	go func() {
		err := p.run(p.ctx)
		p.done <- err
		if p.ctx.Err() == nil {
			// The agent ended by itself (an update, an error): exit so
			// the service manager's recovery starts it again.
			os.Exit(1)
		}
	}()
	return nil
}

func (p *program) Stop(s ks.Service) error {
	p.cancel()
	select {
	case err := <-p.done:
		p.done <- err
	case <-time.After(20 * time.Second):
	}
	return nil
}

// noop is the program kardianos wants for install and uninstall, which
// run nothing.
type noop struct{}

func (noop) Start(ks.Service) error { return nil }
func (noop) Stop(ks.Service) error  { return nil }
