package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/cordon-mdm/cordon/agent/localapi"
	"github.com/cordon-mdm/cordon/agent/state"
	"github.com/cordon-mdm/cordon/internal/timearg"
	"github.com/cordon-mdm/cordon/protocol"
)

// report files an incident through the running agent, which spools it
// and sends it over its mutual-TLS channel; the fields are the API's.
func report(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("cordon-agent report", flag.ContinueOnError)
	socket := fs.String("socket", "", "the agent's local socket (default: the service's, then a per-user agent's)")
	device := fs.String("device", "", "the device lost, if not this one (another of your enrolled devices)")
	kind := fs.String("kind", "loss_of_control", "loss_of_control, total_loss or compromise")
	lock := fs.String("lock-state", "unknown", "locked, unlocked or unknown, as far as you know")
	started := fs.String("started", "", "when it started: RFC 3339 time, or how long ago (20m)")
	ended := fs.String("ended", "", "when it ended (RFC 3339, how long ago, or now); leave out while the device is still out of your control")
	location := fs.String("location", "", "where")
	description := fs.String("description", "", "what happened")
	outside := fs.Bool("outside-us", false, "the loss happened outside the United States")
	wait := fs.Duration("wait", 10*time.Second, "how long to wait for the server to confirm (the report is kept and sent later either way)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	now := time.Now()
	if *started == "" {
		return errors.New("--started is required (RFC 3339 time, or how long ago, e.g. 20m)")
	}
	start, err := timearg.Parse(*started, now)
	if err != nil {
		return fmt.Errorf("--started: %w", err)
	}
	r := protocol.IncidentReport{DeviceID: *device, Kind: *kind, LockState: *lock, StartedAt: start,
		Location: *location, Description: *description, OutsideUS: *outside}
	if *ended != "" {
		e, err := timearg.Parse(*ended, now)
		if err != nil {
			return fmt.Errorf("--ended: %w", err)
		}
		r.EndedAt = &e
	}
	if err := r.Check(); err != nil {
		return err
	}
	return fileLocally(*wait, stdout, func(ctx context.Context) (state.Report, error) {
		return localapi.Client{Socket: *socket}.Report(ctx, r, *wait)
	})
}

// fileLocally hands something to the running agent, waits up to wait for
// the server's answer and prints what became of it.
func fileLocally(wait time.Duration, stdout io.Writer, file func(context.Context) (state.Report, error)) error {
	ctx, cancel := context.WithTimeout(context.Background(), wait+10*time.Second)
	defer cancel()
	got, err := file(ctx)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(got)
}

// bluetooth is "cordon-agent bt request": ask for approval of a
// Bluetooth device through the running agent.
func bluetooth(args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "request" {
		return errors.New("usage: cordon-agent bt request --address AA:BB:CC:DD:EE:FF --reason R --supervisor NAME [--name N]")
	}
	fs := flag.NewFlagSet("cordon-agent bt request", flag.ContinueOnError)
	socket := fs.String("socket", "", "the agent's local socket (default: the service's, then a per-user agent's)")
	address := fs.String("address", "", "the Bluetooth device's address")
	name := fs.String("name", "", "what it is")
	reason := fs.String("reason", "", "why you need it")
	supervisor := fs.String("supervisor", "", "your supervisor, who endorses the request")
	wait := fs.Duration("wait", 10*time.Second, "how long to wait for the server to confirm")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	r := protocol.BluetoothRequest{Address: *address, Name: *name, Reason: *reason, Supervisor: *supervisor}
	if err := r.Check(); err != nil {
		return err
	}
	return fileLocally(*wait, stdout, func(ctx context.Context) (state.Report, error) {
		return localapi.Client{Socket: *socket}.RequestBluetooth(ctx, r, *wait)
	})
}
