package api

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/cordon-mdm/cordon/internal/httpjson"
	"github.com/cordon-mdm/cordon/internal/input"
	"github.com/cordon-mdm/cordon/internal/timefmt"
	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/server/auth"
	"github.com/cordon-mdm/cordon/server/commands"
	"github.com/cordon-mdm/cordon/server/store"
)

// Commands is the remote-command queue.
type Commands interface {
	Issue(ctx context.Context, r commands.Request) (*store.Command, error)
	Approve(ctx context.Context, id, actor, role, source string) (*store.Command, error)
	// Secret is a Mac's lock PIN the command carries, for the LASO only.
	Secret(c *store.Command) string
}

// CommandReader reads a command back.
type CommandReader interface {
	GetCommand(ctx context.Context, id string) (*store.Command, error)
	// GetWipeReceipt is a wipe's receipt, store.ErrNotFound when none.
	GetWipeReceipt(ctx context.Context, commandID string) (*store.WipeReceipt, error)
}

// WithCommands serves the command routes.
func WithCommands(c Commands, r CommandReader) Option {
	return func(a *API) { a.commands, a.commandReader = c, r }
}

func (a *API) issueCommand(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Kind    string `json:"kind"`
		Address string `json:"address"`
		Confirm string `json:"confirm"`
	}
	if !a.decode(w, r, &body) {
		return
	}
	if err := input.First(input.Text("kind", body.Kind, 32), input.Text("address", body.Address, 64),
		input.Text("confirm", body.Confirm, 256)); err != nil {
		a.fail(w, err)
		return
	}
	p := principal(r)
	c, err := a.commands.Issue(r.Context(), commands.Request{DeviceID: r.PathValue("id"), Kind: body.Kind,
		Address: body.Address, Confirm: body.Confirm, Actor: p.Actor, Role: p.Role, Source: httpjson.RemoteHost(r)})
	if err != nil {
		a.fail(w, err)
		return
	}
	httpjson.Write(w, http.StatusAccepted, a.commandFor(r, c))
}

func (a *API) getCommand(w http.ResponseWriter, r *http.Request) {
	c, err := a.commandReader.GetCommand(r.Context(), r.PathValue("id"))
	if err != nil {
		a.fail(w, err)
		return
	}
	httpjson.Write(w, http.StatusOK, a.commandFor(r, c))
}

func (a *API) approveCommand(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	c, err := a.commands.Approve(r.Context(), r.PathValue("id"), p.Actor, p.Role, httpjson.RemoteHost(r))
	if err != nil {
		a.fail(w, err)
		return
	}
	httpjson.Write(w, http.StatusOK, a.commandFor(r, c))
}

// Command is the API's view of a command.
type Command struct {
	ID          string          `json:"id"`
	DeviceID    string          `json:"device_id"`
	Kind        string          `json:"kind"`
	Address     string          `json:"address,omitempty"`
	Status      string          `json:"status"`
	Issuer      string          `json:"issuer"`
	ApprovedBy  string          `json:"approved_by,omitempty"`
	CreatedAt   string          `json:"created_at"`
	NotAfter    string          `json:"not_after"`
	DeliveredAt *string         `json:"delivered_at"`
	CompletedAt *string         `json:"completed_at"`
	Result      json.RawMessage `json:"result"`
	PIN         string          `json:"pin,omitempty"`
	Receipt     *Receipt        `json:"receipt"`
}

// Receipt is a wipe's receipt as the server judged it. Only a verified
// one is proof; Receipt is the signed document itself, for an auditor's
// `cordonctl receipt verify`.
type Receipt struct {
	Status      string          `json:"status"`
	Reason      string          `json:"reason,omitempty"`
	SHA256      string          `json:"sha256"`
	Certificate string          `json:"certificate_serial,omitempty"`
	ReceivedAt  string          `json:"received_at"`
	Receipt     json.RawMessage `json:"receipt"`
}

// ReceiptJSON is the API's view of a stored receipt.
func ReceiptJSON(r *store.WipeReceipt) *Receipt {
	out := &Receipt{Status: r.Status, Reason: r.Reason, SHA256: r.Digest, Certificate: r.CertSerial,
		ReceivedAt: timefmt.JSON(r.ReceivedAt), Receipt: json.RawMessage("null")}
	if json.Valid([]byte(r.Body)) {
		out.Receipt = json.RawMessage(r.Body)
	}
	return out
}

// commandFor is c as the caller may see it: a Mac's PIN, which unlocks
// the Mac, is the LASO's alone.
func (a *API) commandFor(r *http.Request, c *store.Command) Command {
	out := commandJSON(c)
	if principal(r).Role == auth.RoleLASO {
		out.PIN = a.commands.Secret(c)
	}
	if c.Kind == protocol.CommandWipe && a.commandReader != nil {
		// A receipt that cannot be read now shows as none; the command
		// is still worth answering.
		if rec, err := a.commandReader.GetWipeReceipt(r.Context(), c.ID); err == nil {
			out.Receipt = ReceiptJSON(rec)
		}
	}
	return out
}

func commandJSON(c *store.Command) Command {
	ts := func(t *time.Time) *string {
		if t == nil {
			return nil
		}
		s := timefmt.JSON(*t)
		return &s
	}
	out := Command{ID: c.ID, DeviceID: c.DeviceID, Kind: c.Kind, Address: c.Address, Status: c.Status, Issuer: c.Issuer,
		ApprovedBy: c.ApprovedBy, CreatedAt: timefmt.JSON(c.CreatedAt), NotAfter: timefmt.JSON(c.NotAfter),
		DeliveredAt: ts(c.DeliveredAt), CompletedAt: ts(c.CompletedAt), Result: json.RawMessage("null")}
	if c.Result != "" && json.Valid([]byte(c.Result)) {
		out.Result = json.RawMessage(c.Result)
	}
	return out
}
