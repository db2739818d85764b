//go:build windows

package tray

import "os/exec"

func checkSession() error { return nil }
func hostPresent() bool   { return true }

func openBrowser(url string) error {
	return exec.Command("rundll32", "url.dll,FileProtocolHandler", url).Start()
}
