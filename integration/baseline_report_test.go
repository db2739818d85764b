package integration

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/agent"
	posturewin "github.com/cordon-mdm/cordon/agent/posture/windows"
	"github.com/cordon-mdm/cordon/internal/testenv"
	"github.com/cordon-mdm/cordon/protocol"
)

type baselineFinding struct {
	Control string `json:"control"`
	Subject string `json:"subject"`
	Unknown bool   `json:"unknown"`
	Message string `json:"message"`
}

type baselineDevice struct {
	Compliance string            `json:"compliance"`
	Findings   []baselineFinding `json:"findings"`
	Posture    protocol.Posture  `json:"posture"`
}

// windowsLaptop reports what the Windows collector's own parsers make of
// tool output recorded on a compliant Windows 11 laptop (BitLocker XTS-256
// on, every firewall profile on, Defender on, nothing pending): the report
// a real Windows agent sends, short of running on Windows.
type windowsLaptop struct{ t *testing.T }

func (w windowsLaptop) out(name string) posturewin.Output {
	b, err := os.ReadFile(filepath.Join("..", "agent", "posture", "windows", "testdata", name))
	if err != nil {
		w.t.Fatal(err)
	}
	return posturewin.Output{Stdout: b}
}

func (w windowsLaptop) Collect(context.Context) (protocol.Posture, error) {
	sz := func(s string) posturewin.Value[string] { return posturewin.Value[string]{V: s, Present: true} }
	now := time.Now().UTC()
	return protocol.Posture{
		CollectedAt: now,
		OS:          protocol.OSIdentity{Name: "Windows", Version: "10.0.22631", Hostname: "cruiser-14", AgentVersion: "test", Platform: "windows/amd64"},
		LockPolicy: posturewin.LockPolicy(posturewin.LockPolicyInput{User: posturewin.ScreenSaver{Active: sz("1"), Secure: sz("1"),
			TimeOut: sz("600"), Exe: sz(`C:\Windows\system32\scrnsave.scr`)}}, "registry"),
		Disk:  posturewin.ParseBitLocker(w.out("bitlocker_xts256_on.json"), "C:"),
		Patch: posturewin.Patch(w.out("updates_none.json"), w.out("hotfix_ps51.json"), map[string]posturewin.Key{"RebootRequired": {}}, now),
		Hygiene: posturewin.Hygiene(posturewin.HygieneInput{
			Antivirus:  w.out("wsc_defender_only.json"),
			Defender:   w.out("mpstatus.json"),
			Firewall:   w.out("firewall_ps51.json"),
			SecureBoot: posturewin.Value[uint64]{V: 1, Present: true},
		}),
	}, nil
}

// TestBaselineDoesNotQuarantineAWindowsLaptop: the Windows collector says
// root detection is not applicable, and under the shipped baseline a
// compliant Windows laptop is compliant and allowed, not quarantined for
// it.
func TestBaselineDoesNotQuarantineAWindowsLaptop(t *testing.T) {
	e := testenv.New(t, "")
	a := e.StartAgent(e.MustEnroll(), agent.WithCollector(windowsLaptop{t}))
	key := e.APIKey("laso")
	var d baselineDevice
	testenv.Eventually(t, 20*time.Second, "the Windows laptop compliant", func() bool {
		e.Do("GET", "/api/v1/devices/"+a.DeviceID(), key, nil, &d)
		return d.Compliance == "compliant"
	})
	if len(d.Findings) != 0 {
		t.Fatalf("findings %+v", d.Findings)
	}
	if h := d.Posture.Hygiene; h == nil || h.NotApplicable["rooted_suspected"] == "" || h.RootedSuspected != nil {
		t.Fatalf("hygiene %+v: want root detection stated not applicable", h)
	}
	var acc accessJSON
	if e.Do("GET", "/api/v1/devices/"+a.DeviceID()+"/access", key, nil, &acc); acc.Decision != "allow" {
		t.Fatalf("access %+v", acc)
	}
}
