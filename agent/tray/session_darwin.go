//go:build darwin && cgo

package tray

import "os/exec"

func checkSession() error { return nil }
func hostPresent() bool   { return true }

func openBrowser(url string) error { return exec.Command("open", url).Start() }
