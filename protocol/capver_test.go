package protocol

import "testing"

func TestAcceptsGatesPushedFramesOnVersionAndCapability(t *testing.T) {
	all := AgentCapabilities
	for _, tc := range []struct {
		v    CapabilityVersion
		caps []string
		typ  string
		want bool
	}{
		{0, nil, TypeAck, true},
		{0, nil, TypeRenewed, true},
		{0, []string{CapPosture, CapRenew}, TypeCommand, false},
		{2, all, TypeCommand, false},
		{3, all, TypeCommand, true},
		{CurrentCapabilityVersion, []string{CapPosture}, TypeCommand, false},
		{3, all, TypeDeviceState, false},
		{4, all, TypeDeviceState, true},
		{8, all, TypeReconnectHint, false},
		{9, []string{CapPosture}, TypeReconnectHint, false},
		{9, all, TypeReconnectHint, true},
		{CurrentCapabilityVersion, all, "no_such_frame", false},
	} {
		if got := Accepts(tc.v, tc.caps, tc.typ); got != tc.want {
			t.Errorf("Accepts(%d, %v, %q) = %v, want %v", tc.v, tc.caps, tc.typ, got, tc.want)
		}
	}
}

func TestHelloBoundsWhatADeviceAnnounces(t *testing.T) {
	ok := Hello{Platform: "linux/amd64", Capabilities: AgentCapabilities, CapabilityVersion: CurrentCapabilityVersion}
	if err := ok.Check(); err != nil {
		t.Fatalf("this agent's own hello refused: %v", err)
	}
	for name, h := range map[string]Hello{
		"negative version": {Platform: "linux/amd64", CapabilityVersion: -1},
		"huge version":     {Platform: "linux/amd64", CapabilityVersion: 1 << 20},
		"bad name":         {Platform: "linux/amd64", Capabilities: []string{"Posture\n"}},
		"too many":         {Platform: "linux/amd64", Capabilities: make([]string, 33)},
	} {
		if err := h.Check(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
