package protocol

import (
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"
)

func validUpdate() *UpdateParams {
	sha := strings.Repeat("ab", 32)
	return &UpdateParams{Version: "1.2.3", OS: "linux", Arch: "amd64", SHA256: sha, Size: 1 << 20,
		Path: ReleasePathPrefix + sha, DeadlineSeconds: 300}
}

func TestUpdateCommandRoundTripsAndRefusesBadParams(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(nil)
	c := Command{ID: "c1", DeviceID: "d1", Kind: CommandUpdate, Update: validUpdate(), NotAfter: time.Now().Add(time.Hour)}
	s, err := SignCommand(key, c)
	if err != nil {
		t.Fatal(err)
	}
	got, err := OpenCommand(pub, s)
	if err != nil || got.Update == nil || got.Update.SHA256 != c.Update.SHA256 || got.Update.Deadline() != 5*time.Minute {
		t.Fatalf("open: %+v %v", got, err)
	}
	for name, mutate := range map[string]func(*Command){
		"no params": func(c *Command) { c.Update = nil },
		"short sha": func(c *Command) { c.Update.SHA256 = "abcd" },
		"upper-case sha": func(c *Command) {
			c.Update.SHA256 = strings.Repeat("AB", 32)
			c.Update.Path = ReleasePathPrefix + c.Update.SHA256
		},
		"other path":     func(c *Command) { c.Update.Path = "/etc/passwd" },
		"bad os":         func(c *Command) { c.Update.OS = "plan9" },
		"bad arch":       func(c *Command) { c.Update.Arch = "mips" },
		"zero size":      func(c *Command) { c.Update.Size = 0 },
		"huge size":      func(c *Command) { c.Update.Size = MaxReleaseBytes + 1 },
		"no version":     func(c *Command) { c.Update.Version = "" },
		"short deadline": func(c *Command) { c.Update.DeadlineSeconds = 1 },
		"params on lock": func(c *Command) { c.Kind = CommandLock },
	} {
		cc := c
		u := *c.Update
		cc.Update = &u
		mutate(&cc)
		s, _ := SignCommand(key, cc)
		if _, err := OpenCommand(pub, s); !errors.Is(err, ErrBadCommand) {
			t.Errorf("%s: %v, want ErrBadCommand", name, err)
		}
	}
}

func TestUpdateIsGatedOnVersion12(t *testing.T) {
	if CurrentCapabilityVersion < UpdateMinVersion {
		t.Fatalf("this build speaks %d, below update's %d", CurrentCapabilityVersion, UpdateMinVersion)
	}
	found := false
	for _, c := range AgentCapabilities {
		found = found || c == CapUpdates
	}
	if !found {
		t.Fatal("this build does not announce agent_updates")
	}
}

func FuzzOpenUpdateCommand(f *testing.F) {
	pub, key, _ := ed25519.GenerateKey(nil)
	s, _ := SignCommand(key, Command{ID: "c1", DeviceID: "d1", Kind: CommandUpdate, Update: validUpdate(), NotAfter: time.Now()})
	f.Add(s.Payload)
	f.Fuzz(func(t *testing.T, payload []byte) {
		// Signed by the real key, so the decoder and Check see it all.
		signed := SignedCommand{Payload: payload, Signature: ed25519.Sign(key, append([]byte(commandDomain), payload...))}
		c, err := OpenCommand(pub, signed)
		if err == nil && c.Kind == CommandUpdate && (c.Update == nil || c.Update.Check() != nil) {
			t.Fatalf("accepted an update without valid params: %+v", c)
		}
	})
}
