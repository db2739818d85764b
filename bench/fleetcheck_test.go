//go:build linux

package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cordon-mdm/cordon/internal/loadsim"
	"github.com/cordon-mdm/cordon/server/store"
)

// commandLatency issues lock commands through POST /api/v1/devices/{id}/commands
// to random connected agents, eight at a time as a busy console would,
// and reads each back with GET /api/v1/commands/{id} until it is
// answered: from created_at (the API accepted it) to completed_at (the
// agent's answer stored), both the server's stamps.
func commandLatency(ctx context.Context, c fleetConfig, fx *fixture) (p50, p99 time.Duration, n int, err error) {
	type cmdView struct {
		ID          string     `json:"id"`
		Status      string     `json:"status"`
		CreatedAt   time.Time  `json:"created_at"`
		CompletedAt *time.Time `json:"completed_at"`
	}
	call := func(k int, method, path string, body string, out any) error {
		req, _ := http.NewRequestWithContext(ctx, method, "https://"+c.consoleAddr(k)+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+fx.apiKeys[k])
		req.Header.Set("Content-Type", "application/json")
		resp, err := insecure.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode >= 300 {
			return fmt.Errorf("%s %s: %s", method, path, resp.Status)
		}
		return json.NewDecoder(resp.Body).Decode(out)
	}
	var (
		mu   sync.Mutex
		lat  []time.Duration
		errs []error
		wg   sync.WaitGroup
		next = make(chan int)
	)
	for range 8 {
		wg.Go(func() {
			for range next {
				i := rand.IntN(c.agents)
				k := c.serverOf(i)
				cfg, err := loadsim.StateDir(fx.agents, i).LoadConfig()
				var v cmdView
				if err == nil {
					err = call(k, http.MethodPost, "/api/v1/devices/"+cfg.DeviceID+"/commands", `{"kind":"lock"}`, &v)
				}
				for deadline := time.Now().Add(time.Minute); err == nil && v.CompletedAt == nil; {
					if time.Now().After(deadline) {
						err = fmt.Errorf("command %s still %s after a minute", v.ID, v.Status)
						break
					}
					time.Sleep(5 * time.Millisecond)
					err = call(k, http.MethodGet, "/api/v1/commands/"+v.ID, "", &v)
				}
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					lat = append(lat, v.CompletedAt.Sub(v.CreatedAt))
				}
				mu.Unlock()
			}
		})
	}
	for i := range c.commands {
		next <- i
	}
	close(next)
	wg.Wait()
	if len(lat) == 0 {
		return 0, 0, 0, fmt.Errorf("no command answered: %v", errs)
	}
	slices.Sort(lat)
	if len(errs) > 0 {
		err = fmt.Errorf("%d of %d failed, the first: %w", len(errs), c.commands, errs[0])
	}
	return lat[len(lat)/2], lat[len(lat)*99/100], len(lat), err
}

// lostReports compares what the simulators were acknowledged with what
// the servers stored: every acknowledged posture report must be in
// posture_reports, and every other acknowledged frame is a command's
// answer, so the answered commands of the run must account for them.
func lostReports(ctx context.Context, c fleetConfig, data []string, ss sims, since time.Time) (acked, lost int, err error) {
	ids := map[string]bool{}
	for _, s := range ss {
		f, err := os.Open(s.acked)
		if err != nil {
			return 0, 0, err
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if _, id, ok := strings.Cut(sc.Text(), " "); ok {
				ids[id] = true
			}
		}
		f.Close()
	}
	stored, answers := 0, 0
	dbs := data
	if c.database != "" {
		dbs = data[:1] // one database for all
	}
	for _, d := range dbs {
		st, err := store.Open(ctx, d, c.database)
		if err != nil {
			return 0, 0, err
		}
		var reports []string
		err = st.DB().WithContext(ctx).Raw(`SELECT report_id FROM posture_reports`).Scan(&reports).Error
		var n int64
		if err == nil {
			err = st.DB().WithContext(ctx).Raw(`SELECT COUNT(*) FROM commands WHERE completed_at IS NOT NULL AND created_at >= ?`, since.UTC()).Scan(&n).Error
		}
		st.Close()
		if err != nil {
			return 0, 0, err
		}
		for _, r := range reports {
			if ids[r] {
				stored++
			}
		}
		answers += int(n)
	}
	return len(ids), max(0, len(ids)-stored-answers), nil
}
