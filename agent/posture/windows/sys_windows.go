package windows

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/registry"
)

var (
	wtsapi32                        = windows.NewLazySystemDLL("wtsapi32.dll")
	procWTSQuerySessionInformationW = wtsapi32.NewProc("WTSQuerySessionInformationW")
)

// noConsoleSession is what WTSGetActiveConsoleSessionId returns while the
// console is being switched between sessions.
const noConsoleSession = 0xFFFFFFFF

// ErrNoConsoleSession means no session is attached to the physical
// console.
var ErrNoConsoleSession = errors.New("no session is attached to the console")

// ConsoleSession reads WTSINFOEXW for the session at the physical console.
func ConsoleSession() (SessionInfoEx, error) {
	id := windows.WTSGetActiveConsoleSessionId()
	if id == noConsoleSession {
		return SessionInfoEx{}, ErrNoConsoleSession
	}
	var buf *byte
	var n uint32
	r, _, err := procWTSQuerySessionInformationW.Call(0, // WTS_CURRENT_SERVER_HANDLE
		uintptr(id), WTSSessionInfoEx, uintptr(unsafe.Pointer(&buf)), uintptr(unsafe.Pointer(&n)))
	if r == 0 {
		return SessionInfoEx{}, fmt.Errorf("WTSQuerySessionInformationW(%d): %w", id, err)
	}
	defer windows.WTSFreeMemory(uintptr(unsafe.Pointer(buf)))
	if buf == nil {
		return SessionInfoEx{}, errors.New("WTSQuerySessionInformationW returned no buffer")
	}
	return DecodeSessionInfoEx(bytes.Clone(unsafe.Slice(buf, n)))
}

// ConsoleUserSID is the SID of the user signed in at the console, whose
// HKEY_USERS hive holds their settings. It needs SeTcbPrivilege, which
// the agent has as a LocalSystem service.
func ConsoleUserSID() (string, error) {
	id := windows.WTSGetActiveConsoleSessionId()
	if id == noConsoleSession {
		return "", ErrNoConsoleSession
	}
	var tok windows.Token
	if err := windows.WTSQueryUserToken(id, &tok); err != nil {
		if errors.Is(err, windows.ERROR_NO_TOKEN) {
			return "", errors.New("no user signed in at the console")
		}
		return "", fmt.Errorf("WTSQueryUserToken: %w", err)
	}
	defer tok.Close()
	u, err := tok.GetTokenUser()
	if err != nil {
		return "", fmt.Errorf("GetTokenUser: %w", err)
	}
	return u.User.Sid.String(), nil
}

func openKey(root registry.Key, path string) (registry.Key, bool, string) {
	k, err := registry.OpenKey(root, path, registry.QUERY_VALUE)
	switch {
	case errors.Is(err, registry.ErrNotExist):
		return 0, false, ""
	case err != nil:
		return 0, false, clip(path + ": " + err.Error())
	}
	return k, true, ""
}

// ReadDWORD reads an integer registry value.
func ReadDWORD(root registry.Key, path, name string) Value[uint64] {
	k, ok, why := openKey(root, path)
	if !ok {
		return Value[uint64]{Err: why}
	}
	defer k.Close()
	v, _, err := k.GetIntegerValue(name)
	switch {
	case errors.Is(err, registry.ErrNotExist):
		return Value[uint64]{}
	case err != nil:
		return Value[uint64]{Err: clip(name + ": " + err.Error())}
	}
	return Value[uint64]{V: v, Present: true}
}

// ReadString reads a REG_SZ value.
func ReadString(root registry.Key, path, name string) Value[string] {
	k, ok, why := openKey(root, path)
	if !ok {
		return Value[string]{Err: why}
	}
	defer k.Close()
	v, _, err := k.GetStringValue(name)
	switch {
	case errors.Is(err, registry.ErrNotExist):
		return Value[string]{}
	case err != nil:
		return Value[string]{Err: clip(name + ": " + err.Error())}
	}
	return Value[string]{V: v, Present: true}
}

// KeyExists tells whether a registry key exists.
func KeyExists(root registry.Key, path string) Key {
	k, ok, why := openKey(root, path)
	if ok {
		k.Close()
	}
	return Key{Exists: ok, Err: why}
}

// PowerShell runs script in Windows PowerShell with its output in UTF-8,
// so that device and product names survive whatever the OEM code page is,
// and with every error terminating, so that a failed query exits non-zero
// instead of printing a partial answer.
func PowerShell(ctx context.Context, timeout time.Duration, script string) Output {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// Found by absolute path: the service's PATH is not to be trusted.
	exe := filepath.Join(os.Getenv("SystemRoot"), `System32\WindowsPowerShell\v1.0\powershell.exe`)
	if os.Getenv("SystemRoot") == "" {
		exe = `C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe`
	}
	cmd := exec.CommandContext(ctx, exe, "-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass", "-Command",
		"try { [Console]::OutputEncoding = [Text.Encoding]::UTF8 } catch {}; "+
			"$ErrorActionPreference = 'Stop'; $ProgressPreference = 'SilentlyContinue'; "+script)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("timed out after %s", timeout)
	}
	return Output{Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), Err: err}
}
