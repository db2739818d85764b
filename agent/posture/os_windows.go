//go:build windows

package posture

import (
	"context"
	"fmt"
	"runtime"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/registry"

	"github.com/cordon-mdm/cordon/protocol"
)

func osIdentity(context.Context) protocol.OSIdentity {
	id := protocol.OSIdentity{Source: `RtlGetVersion, HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion`}
	v := windows.RtlGetVersion()
	id.Kernel = fmt.Sprintf("%d.%d.%d", v.MajorVersion, v.MinorVersion, v.BuildNumber)
	k, err := registry.OpenKey(registry.LOCAL_MACHINE, `SOFTWARE\Microsoft\Windows NT\CurrentVersion`, registry.QUERY_VALUE)
	if err != nil {
		id.Name = "Windows"
		id.Error = "registry: " + err.Error()
		return id
	}
	defer k.Close()
	id.Name, _, _ = k.GetStringValue("ProductName")
	id.Version, _, _ = k.GetStringValue("DisplayVersion")
	ubr, _, err := k.GetIntegerValue("UBR")
	if err == nil {
		id.Build = fmt.Sprintf("%d.%d", v.BuildNumber, ubr)
	} else {
		id.Build = fmt.Sprint(v.BuildNumber)
	}
	return id
}

// windowsPlatform reads windows. Sections not yet collected here answer unknown.
type windowsPlatform struct{ unsupported }

func newPlatform() platform {
	return windowsPlatform{unsupported{reason: "not collected on " + runtime.GOOS + " yet"}}
}

func (windowsPlatform) identity(ctx context.Context) protocol.OSIdentity { return osIdentity(ctx) }
