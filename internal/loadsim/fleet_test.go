package loadsim_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/internal/fips"
	"github.com/cordon-mdm/cordon/internal/loadsim"
	"github.com/cordon-mdm/cordon/internal/testenv"
)

// output collects a run's JSON lines.
type output struct {
	mu    sync.Mutex
	last  loadsim.Stats
	marks []loadsim.Mark
}

func (o *output) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		o.mu.Lock()
		if strings.Contains(sc.Text(), `"mark"`) {
			var m loadsim.Mark
			json.Unmarshal(sc.Bytes(), &m)
			o.marks = append(o.marks, m)
		} else {
			json.Unmarshal(sc.Bytes(), &o.last)
		}
		o.mu.Unlock()
	}
}

func (o *output) stats() loadsim.Stats {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.last
}

// TestFleetAgainstTheRealServer enrolls a small fleet through POST
// /enroll, runs it, locks one device through the API and checks what the
// simulator says against what the server stored.
func TestFleetAgainstTheRealServer(t *testing.T) {
	const n = 4
	e := testenv.New(t, "")
	ctx := context.Background()
	root := t.TempDir()
	req := loadsim.EnrollRequest{Server: e.Server.ConsoleURL(), Token: e.Token(time.Hour, n),
		Fingerprint: e.Server.CA.RootFingerprint(), Root: root, Count: n, Parallel: 2, Version: "test", FIPS: fips.Default()}
	res, err := loadsim.Enroll(ctx, req)
	if err != nil || res.Enrolled != n {
		t.Fatalf("enroll: %+v, %v", res, err)
	}
	// The token is used up: a second run must reuse the identities.
	if res, err := loadsim.Enroll(ctx, req); err != nil || res.Reused != n || res.Enrolled != 0 {
		t.Fatalf("second enroll: %+v, %v", res, err)
	}

	outR, outW := io.Pipe()
	ctlR, ctlW := io.Pipe()
	acked := filepath.Join(t.TempDir(), "acked")
	ackedF, err := os.Create(acked)
	if err != nil {
		t.Fatal(err)
	}
	var out output
	go out.read(outR)
	runErr := make(chan error, 1)
	go func() {
		runErr <- loadsim.Run(ctx, loadsim.RunConfig{Root: root, Count: n, Duration: 2 * time.Minute, Poll: time.Hour, Report: time.Hour,
			Ramp: 2, StatsEvery: 20 * time.Millisecond, Version: "test", FIPS: fips.Default(), Out: outW, Control: ctlR, AckedOut: ackedF})
		outW.Close()
	}()
	testenv.Eventually(t, time.Minute, "every simulated agent connected", func() bool { return out.stats().Connected == n })
	testenv.Eventually(t, time.Minute, "the server holding them", func() bool { return e.Server.Hub().Count() == n })

	cfg, err := loadsim.StateDir(root, 2).LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	key := e.APIKey("laso")
	var cmd struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	}
	if code := e.Do("POST", "/api/v1/devices/"+cfg.DeviceID+"/commands", key, map[string]string{"kind": "lock"}, &cmd); code != 202 {
		t.Fatalf("lock: %d", code)
	}
	testenv.Eventually(t, time.Minute, "the simulated device's answer stored", func() bool {
		e.Do("GET", "/api/v1/commands/"+cmd.ID, key, nil, &cmd)
		return cmd.Status == "done"
	})
	var dev struct {
		Posture struct {
			Lock struct {
				State string `json:"state"`
			} `json:"lock"`
		} `json:"posture"`
	}
	testenv.Eventually(t, time.Minute, "the lock reported", func() bool {
		e.Do("GET", "/api/v1/devices/"+cfg.DeviceID, key, nil, &dev)
		return dev.Posture.Lock.State == "locked"
	})

	before := out.stats().Acked
	io.WriteString(ctlW, "report\n")
	testenv.Eventually(t, time.Minute, "a report from every agent acknowledged", func() bool { return out.stats().Acked >= before+n })
	io.WriteString(ctlW, "mark burst\nstop\n")
	if err := <-runErr; err != nil {
		t.Fatal(err)
	}
	ackedF.Close()
	final := out.stats()
	if !final.Final || final.Connects != n || final.Commands < 1 || final.Failed != 0 {
		t.Errorf("final line %+v", final)
	}
	if len(out.marks) != 1 || out.marks[0].Acks < n || out.marks[0].At99Ms < out.marks[0].FirstMs {
		t.Errorf("marks %+v", out.marks)
	}
	b, err := os.ReadFile(acked)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if int64(len(lines)) != final.Acked {
		t.Errorf("%d acknowledged frames listed, the final line says %d", len(lines), final.Acked)
	}
	var stored int64
	ids := make([]string, 0, len(lines))
	for _, l := range lines {
		_, id, _ := strings.Cut(l, " ")
		ids = append(ids, id)
	}
	if err := e.Server.Store.DB().Raw(`SELECT COUNT(*) FROM posture_reports WHERE report_id IN ?`, ids).Scan(&stored).Error; err != nil {
		t.Fatal(err)
	}
	// Every acknowledged frame is a stored report or the lock's answer.
	if stored+1 != final.Acked {
		t.Errorf("%d of %d acknowledged frames are stored reports; the rest should be the one command answer", stored, final.Acked)
	}
}
