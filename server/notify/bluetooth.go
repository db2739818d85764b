package notify

import (
	"context"
	"fmt"
	"strings"

	"github.com/cordon-mdm/cordon/internal/timefmt"
	"github.com/cordon-mdm/cordon/server/auth"
	"github.com/cordon-mdm/cordon/server/store"
)

// BluetoothPayload is what the webhook receives for a request's step.
type BluetoothPayload struct {
	Event   string         `json:"event"` // "bluetooth_request"
	Reason  string         `json:"reason"`
	Request map[string]any `json:"request"`
}

// NotifyBluetooth tells the parties of a Bluetooth approval request
// about its step (agency policy T): the supervisor when it is filed, IT
// when it is endorsed, the requester and the supervisor when it is
// decided; the webhook hears every step. People are emailed when they
// are known by an address ("user:EMAIL"); API-key actors have none.
func (s *Service) NotifyBluetooth(ctx context.Context, r *store.BluetoothRequest, step string) {
	var to []string
	switch r.Status {
	case "pending":
		to = append(to, emailOf(r.Supervisor))
	case "endorsed":
		users, err := s.store.UsersWithRoles(ctx, auth.RoleITAdmin)
		if err != nil {
			s.log.Error("notification recipients", "err", err)
		}
		for _, u := range users {
			to = append(to, u.Email)
		}
	default: // approved, denied
		to = append(to, emailOf(r.Requester), emailOf(r.Supervisor))
	}
	subject := fmt.Sprintf("[Cordon] Bluetooth request %s: %s (%s)", step, r.Address, r.Name)
	body := fmt.Sprintf("Device: %s\r\nBluetooth device: %s %s\r\nReason: %s\r\nRequested by: %s\r\nSupervisor: %s\r\nStatus: %s\r\n",
		r.DeviceID, r.Address, r.Name, r.Reason, r.Requester, r.Supervisor, r.Status)
	if r.Decision != "" {
		body += "Decision: " + r.Decision + "\r\n"
	}
	s.enqueue(ctx, outgoing{ref: r.ID, about: "bluetooth_request", subject: subject, body: body, to: to, step: step,
		payload: BluetoothPayload{Event: "bluetooth_request", Reason: step, Request: map[string]any{
			"id": r.ID, "device_id": r.DeviceID, "address": r.Address, "name": r.Name, "reason": r.Reason,
			"requester": r.Requester, "supervisor": r.Supervisor, "status": r.Status, "decided_by": r.DecidedBy,
			"decision": r.Decision, "created_at": timefmt.JSON(r.CreatedAt)}}})
}

// emailOf is the address of a "user:EMAIL" actor (or a bare address).
func emailOf(actor string) string {
	a := strings.TrimPrefix(actor, "user:")
	if strings.Contains(a, ":") || !strings.Contains(a, "@") {
		return ""
	}
	return a
}
