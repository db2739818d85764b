package loadsim

import (
	"context"
	"sync/atomic"

	"github.com/cordon-mdm/cordon/agent/actions"
)

// Executor is the device's actions.Executor. It answers every command
// from the simulated state and never touches the host: a lock locks the
// simulated session, a Bluetooth block marks the simulated peer, and a
// wipe erases nothing and says so. Its plan never asks for a power-off,
// so the agent's last wipe step (shutdown -h now) cannot run, and since
// the wipe does not report done the agent keeps its identity: the cached
// state dir stays usable for the next run.
type Executor struct {
	d        *Device
	answered *atomic.Int64
}

// NewExecutor acts on d and counts each answered command in answered.
func NewExecutor(d *Device, answered *atomic.Int64) *Executor {
	return &Executor{d: d, answered: answered}
}

// Lock locks the simulated session.
func (e *Executor) Lock(context.Context) actions.Outcome {
	e.d.setLocked(true)
	e.answered.Add(1)
	return actions.Outcome{Done: true, Message: "simulated session locked"}
}

// BluetoothBlock blocks a simulated peer.
func (e *Executor) BluetoothBlock(_ context.Context, address string) actions.Outcome {
	e.answered.Add(1)
	if !e.d.block(address) {
		return actions.Outcome{Message: "no such peer on the simulated device"}
	}
	return actions.Outcome{Done: true, Message: "simulated peer blocked"}
}

// Plan is an empty plan that keeps the machine running.
func (e *Executor) Plan(context.Context) (actions.WipePlan, error) {
	return actions.WipePlan{PowerOff: false, Notes: []string{"simulated device: nothing to erase"}}, nil
}

// Erase erases nothing and reports the wipe as not done.
func (e *Executor) Erase(context.Context, actions.WipePlan) actions.Outcome {
	e.answered.Add(1)
	return actions.Outcome{Message: "simulated device: nothing erased, identity kept"}
}
