//go:build (linux && !android) || windows || (darwin && cgo)

package tray

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"log/slog"
	"time"

	"fyne.io/systray"

	"github.com/cordon-mdm/cordon/protocol"
)

// Labels of the menu items; tests find the items by them.
const (
	LabelReportThis = "Report loss of control of this device…"
	LabelReportLost = "Report a lost or stolen device…"
	LabelBluetooth  = "Ask approval for a Bluetooth device…"
	LabelQuit       = "Quit Cordon tray"
)

// Run shows the tray until ctx ends or the user quits it. systray keeps
// process-wide state, so Run may be called once per process.
func Run(ctx context.Context, o Options) error {
	if o.Open == nil {
		o.Open = openBrowser
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Refresh <= 0 {
		o.Refresh = 5 * time.Second
	}
	if err := checkSession(); err != nil {
		return err
	}
	form, err := NewForm(o.Agent)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go form.Serve(ctx)
	go func() {
		<-ctx.Done()
		systray.Quit()
	}()
	// onReady must return promptly: the menu answers no D-Bus call until
	// it has, so the click loop runs on its own goroutine.
	systray.Run(func() { go menu(ctx, o, form) }, func() {})
	if !hostPresent() {
		o.Log.Warn("no tray host (StatusNotifierWatcher) on this desktop: the menu was exported but not shown")
	}
	return nil
}

func menu(ctx context.Context, o Options, form *Form) {
	systray.SetTitle("Cordon")
	systray.SetTooltip("Cordon: device status and loss reporting")
	status := systray.AddMenuItem("Cordon: checking…", "")
	status.Disable()
	this := systray.AddMenuItem(LabelReportThis, "Tell your LASO and IT that this device was out of your control")
	lost := systray.AddMenuItem(LabelReportLost, "Report one of your devices lost, stolen or compromised")
	bt := systray.AddMenuItem(LabelBluetooth, "Only approved Bluetooth devices may be used: ask your supervisor and IT")
	systray.AddSeparator()
	quit := systray.AddMenuItem(LabelQuit, "")
	refresh := func() {
		line, icon := statusLine(ctx, o.Agent)
		status.SetTitle(line)
		systray.SetTooltip(line)
		systray.SetIcon(icon)
	}
	refresh()
	tick := time.NewTicker(o.Refresh)
	defer tick.Stop()
	open := func(mode string) {
		if err := o.Open(form.URL(mode)); err != nil {
			o.Log.Error("could not open the report form", "err", err)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			refresh()
		case <-this.ClickedCh:
			open(ModeThisDevice)
		case <-lost.ClickedCh:
			open(ModeLost)
		case <-bt.ClickedCh:
			open(ModeBluetooth)
		case <-status.ClickedCh:
			// Disabled items still deliver D-Bus clicks; they mean nothing.
		case <-quit.ClickedCh:
			systray.Quit()
			return
		}
	}
}

// statusLine says whether the device is connected and compliant, and
// picks the icon's colour: green when both, amber when not known, red
// when quarantined or not connected.
func statusLine(ctx context.Context, a Agent) (string, []byte) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	st, err := a.Status(ctx)
	switch {
	case err != nil:
		return "Cordon agent not running", icon(color.RGBA{0xc0, 0x20, 0x20, 0xff})
	case st.Compliance == protocol.ComplianceQuarantined:
		return "Quarantined: CJI access refused (" + st.Connection + ")", icon(color.RGBA{0xc0, 0x20, 0x20, 0xff})
	case st.Connection != "connected":
		return fmt.Sprintf("Not connected (%s) · compliance %s", st.Connection, st.Compliance), icon(color.RGBA{0xc0, 0x20, 0x20, 0xff})
	case st.Compliance == protocol.ComplianceCompliant:
		return "Connected · compliant", icon(color.RGBA{0x20, 0x90, 0x40, 0xff})
	}
	return "Connected · compliance " + st.Compliance, icon(color.RGBA{0xd0, 0x90, 0x10, 0xff})
}

// icon draws a filled disc: the tray needs some icon, and a colour is
// what a person glances at.
func icon(c color.RGBA) []byte {
	const n = 22
	img := image.NewRGBA(image.Rect(0, 0, n, n))
	for y := 0; y < n; y++ {
		for x := 0; x < n; x++ {
			dx, dy := x-n/2, y-n/2
			if dx*dx+dy*dy <= (n/2-1)*(n/2-1) {
				img.Set(x, y, c)
			}
		}
	}
	var b bytes.Buffer
	png.Encode(&b, img)
	return b.Bytes()
}
