package agent

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/cordon-mdm/cordon/agent/state"
	"github.com/cordon-mdm/cordon/protocol"
)

// maxReports bounds the unsent incident reports. Reports are never
// dropped to make room; past this the agent says no.
const maxReports = 100

// keptReports is how many reports the status remembers.
const keptReports = 20

// Report files an incident report: it is on disk before Report returns,
// and goes to the server now or on the next connection. The id is the
// report's; WaitFiled tells what became of it.
func (a *Agent) Report(r protocol.IncidentReport) (string, error) {
	if err := r.Check(); err != nil {
		return "", err
	}
	if r.DeviceID == a.cfg.DeviceID {
		r.DeviceID = ""
	}
	target := r.DeviceID
	if target == "" {
		target = a.cfg.DeviceID
	}
	return a.file(protocol.TypeIncidentReport, r, target, r.Kind)
}

// RequestBluetooth files a request for approval of a Bluetooth device,
// spooled and tracked like a report.
func (a *Agent) RequestBluetooth(r protocol.BluetoothRequest) (string, error) {
	if err := r.Check(); err != nil {
		return "", err
	}
	return a.file(protocol.TypeBluetoothRequest, r, a.cfg.DeviceID, protocol.TypeBluetoothRequest)
}

// file spools something a person filed and tracks it in the status.
func (a *Agent) file(typ string, body any, target, kind string) (string, error) {
	id := uuid.NewString()
	frame, err := protocol.Encode(typ, id, time.Now(), body)
	if err != nil {
		return "", err
	}
	if err := a.reports.Add(id, frame); err != nil {
		return "", fmt.Errorf("not stored: %w", err)
	}
	a.setStatus(func(st *state.Status) {
		st.Reports = slices.Insert(st.Reports, 0, state.Report{ID: id, DeviceID: target, Kind: kind, FiledAt: time.Now().UTC(), State: "spooled"})
		if len(st.Reports) > keptReports {
			st.Reports = st.Reports[:keptReports]
		}
	})
	select {
	case a.reportKick <- struct{}{}:
	default:
	}
	return id, nil
}

// WaitFiled waits until the server has answered report id, or ctx ends;
// it returns the report as tracked either way.
func (a *Agent) WaitFiled(ctx context.Context, id string) state.Report {
	for {
		a.statusMu.Lock()
		var r state.Report
		for _, x := range a.status.Reports {
			if x.ID == id {
				r = x
			}
		}
		ch := a.reportsChanged
		a.statusMu.Unlock()
		if r.State != "spooled" {
			return r
		}
		select {
		case <-ctx.Done():
			return r
		case <-ch:
		}
	}
}

// Status is the agent's current status.
func (a *Agent) Status() state.Status {
	a.statusMu.Lock()
	defer a.statusMu.Unlock()
	s := a.status
	s.Reports = slices.Clone(s.Reports)
	s.Devices = slices.Clone(s.Devices)
	return s
}

// sendReports writes every unacknowledged report; the server opens one
// incident per report however often it arrives.
func (s *session) sendReports() error {
	pending, err := s.a.reports.Pending()
	if err != nil {
		return err
	}
	for _, it := range pending {
		if err := s.writeRaw(it.Frame); err != nil {
			return err
		}
	}
	return nil
}

// reportAnswered settles a report: filed as incident, or refused.
func (a *Agent) reportAnswered(id string, ack protocol.Ack, refusal string) {
	if err := a.reports.Remove(id); err != nil {
		a.log.Error("reports spool remove", "err", err)
	}
	a.setStatus(func(st *state.Status) {
		for i := range st.Reports {
			if st.Reports[i].ID == id {
				if refusal != "" {
					st.Reports[i].State, st.Reports[i].Error = "refused", refusal
				} else {
					st.Reports[i].State, st.Reports[i].Incident, st.Reports[i].Request = "filed", ack.Incident, ack.Request
				}
			}
		}
	})
	if refusal != "" {
		a.log.Warn("incident report refused by the server", "report", id, "reason", refusal)
	} else {
		a.log.Info("filed with the server", "report", id, "incident", ack.Incident, "request", ack.Request)
	}
}

// deviceState records what the server says of this device.
func (a *Agent) deviceState(env protocol.Envelope) {
	var ds protocol.DeviceState
	if err := protocol.DecodeBody(env, &ds); err != nil {
		a.log.Warn("device_state refused", "err", err)
		return
	}
	a.setStatus(func(st *state.Status) {
		st.Compliance, st.Quarantine, st.Devices = ds.Compliance, ds.Quarantine, ds.Devices
	})
}
