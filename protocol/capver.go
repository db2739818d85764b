package protocol

import "slices"

// CapabilityVersion numbers what an agent understands on the wire, after
// Tailscale's tailcfg.CapabilityVersion: one integer, bumped by one with
// every wire feature, so the server can tell an old agent from a new one
// and send it nothing it would refuse. Version (the envelope) changes only
// for an incompatible break; this changes with every addition.
//
// Capability version log (what each version added):
//
//	1 (2026-11-23): envelope {v,type,id,ts,body}; hello, posture, ack,
//	                error, renew, renewed.
//	2 (2026-11-23): posture sections lock_policy, disk, patch, bluetooth,
//	                hygiene, with provenance (source, unknown) on each.
//	3 (2026-11-23): command (server → agent, Ed25519-signed) and
//	                command_result (agent → server, acknowledged).
//	4 (2026-11-23): incident_report (agent → server, ack.incident) and
//	                device_state (server → agent).
//	5 (2026-11-23): posture identity section (key_storage).
//	6 (2026-11-23): bluetooth_request (agent → server, ack.request).
//	7 (2026-12-01): posture provenance not_applicable, patch.pending and
//	                hygiene.antimalware_signatures_at.
//	8 (2026-12-01): hello carries capability_version and the agent's real
//	                capabilities; the server sends a device only the frame
//	                types its version and capabilities announce.
//	9 (2026-12-01): reconnect_hint (server → agent): the window over which
//	                the agent spreads its first retry after losing the
//	                server, and its wait after a refused handshake.
//	10 (2026-12-01): command_result.receipt: a wipe's WipeReceipt, signed
//	                by the device's identity key before it is destroyed
//	                (capability wipe_receipts).
//	11 (2026-12-01): TPM attestation at enrollment (the enroll exchange).
//	12 (2026-12-02): command kind update with its signed UpdateParams
//	                (capability agent_updates); the agent fetches the
//	                build from ReleasePathPrefix on the agent listener.
type CapabilityVersion int

// CurrentCapabilityVersion is what this build of the agent speaks.
const CurrentCapabilityVersion CapabilityVersion = 12

// Capabilities an agent announces in hello. A feature the server pushes
// needs both the capability and a version that has its frames.
const (
	CapPosture   = "posture"
	CapRenew     = "renew"
	CapCommands  = "commands"
	CapIncidents = "incidents"
	CapBluetooth = "bluetooth_requests"
)

// AgentCapabilities is what this build of the agent announces.
var AgentCapabilities = []string{CapPosture, CapRenew, CapCommands, CapIncidents, CapBluetooth, CapReconnect, CapWipeReceipts, CapUpdates}

// serverFrames gives, for each frame type the server sends unprompted,
// the capability and the first version that has it. Replies to the
// agent's own frames (ack, error, renewed) need nothing beyond version 1:
// an agent gets them only for frames it chose to send.
var serverFrames = map[string]struct {
	cap string
	min CapabilityVersion
}{
	TypeCommand:       {CapCommands, 3},
	TypeDeviceState:   {CapIncidents, 4},
	TypeReconnectHint: {CapReconnect, 9},
}

// Accepts reports whether an agent that announced version v and caps
// understands a frame of type typ sent by the server. An agent that said
// nothing (version 0, from before capability versions) is taken as
// version 1: the server does not guess at what it might understand.
func Accepts(v CapabilityVersion, caps []string, typ string) bool {
	need, pushed := serverFrames[typ]
	if !pushed {
		return knownTypes[typ]
	}
	return v >= need.min && slices.Contains(caps, need.cap)
}
