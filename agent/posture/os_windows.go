//go:build windows

package posture

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/registry"

	posturewin "github.com/cordon-mdm/cordon/agent/posture/windows"
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

// windowsPlatform reads Windows. Lock changes are not watched: the agent
// polls the lock every few seconds, and a WTS notification would need a
// window or a service control handler the agent does not own here.
type windowsPlatform struct{ unsupported }

func newPlatform() platform {
	return windowsPlatform{unsupported{reason: "not collected on " + runtime.GOOS + " yet"}}
}

func (windowsPlatform) identity(ctx context.Context) protocol.OSIdentity { return osIdentity(ctx) }

// Time limits on each PowerShell query. Searching Windows Update asks
// Microsoft's servers (or WSUS) and is by far the slowest.
const (
	psTimeout     = 30 * time.Second
	updateTimeout = 60 * time.Second
)

const lockSource = "WTSQuerySessionInformationW(WTSSessionInfoEx) for the console session"

func (windowsPlatform) lock(context.Context) *protocol.LockState {
	s, err := posturewin.ConsoleSession()
	if err != nil {
		l := &protocol.LockState{State: protocol.LockUnknown}
		l.Source = lockSource
		l.SetUnknown("state", err.Error())
		return l
	}
	v := windows.RtlGetVersion()
	return posturewin.LockState(s, posturewin.FlagsInverted(v.MajorVersion, v.MinorVersion), lockSource)
}

const (
	inactivityKey = `SOFTWARE\Microsoft\Windows\CurrentVersion\Policies\System`
	desktopKey    = `Control Panel\Desktop`
	desktopPolicy = `Software\Policies\Microsoft\Windows\Control Panel\Desktop`
)

func (windowsPlatform) lockPolicy(context.Context) *protocol.LockPolicy {
	in := posturewin.LockPolicyInput{
		InactivityTimeoutSecs: posturewin.ReadDWORD(registry.LOCAL_MACHINE, inactivityKey, "InactivityTimeoutSecs"),
	}
	source := `HKLM\` + inactivityKey + `; HKEY_USERS\<console user>\` + desktopKey + ` and \` + desktopPolicy
	sid, err := posturewin.ConsoleUserSID()
	read := func(path string) posturewin.ScreenSaver {
		if err != nil {
			// Screen saver settings are per user: with nobody at the console
			// there are none to read.
			bad := posturewin.Value[string]{Err: "console user: " + err.Error()}
			return posturewin.ScreenSaver{Active: bad, Secure: bad, TimeOut: bad, Exe: bad}
		}
		p := sid + `\` + path
		return posturewin.ScreenSaver{
			Active:  posturewin.ReadString(registry.USERS, p, "ScreenSaveActive"),
			Secure:  posturewin.ReadString(registry.USERS, p, "ScreenSaverIsSecure"),
			TimeOut: posturewin.ReadString(registry.USERS, p, "ScreenSaveTimeOut"),
			Exe:     posturewin.ReadString(registry.USERS, p, "SCRNSAVE.EXE"),
		}
	}
	in.User, in.Policy = read(desktopKey), read(desktopPolicy)
	return posturewin.LockPolicy(in, source)
}

const bitLockerScript = `Get-CimInstance -Namespace root/cimv2/Security/MicrosoftVolumeEncryption -ClassName Win32_EncryptableVolume -Filter "DriveLetter='C:'" | Select-Object DriveLetter,ProtectionStatus,ConversionStatus,EncryptionMethod | ConvertTo-Json`

func (windowsPlatform) disk(ctx context.Context) *protocol.DiskEncryption {
	return posturewin.ParseBitLocker(posturewin.PowerShell(ctx, psTimeout, bitLockerScript), "C:")
}

// The search result is wrapped with its ResultCode so that "nothing
// pending" prints an empty list rather than nothing at all.
const (
	updateScript = `$r = (New-Object -ComObject Microsoft.Update.Session).CreateUpdateSearcher().Search('IsInstalled=0 and IsHidden=0'); ` +
		`ConvertTo-Json -Depth 4 -InputObject @{ResultCode = [int]$r.ResultCode; Updates = @($r.Updates | ` +
		`Select-Object Title,MsrcSeverity,LastDeploymentChangeTime,@{n='Categories';e={@($_.Categories | ForEach-Object Name)}})}`
	hotFixScript = `Get-HotFix | Sort-Object InstalledOn -Descending | Select-Object -First 1 HotFixID,InstalledOn | ConvertTo-Json`
)

func (windowsPlatform) patch(ctx context.Context) *protocol.PatchLevel {
	searched := time.Now()
	search := posturewin.PowerShell(ctx, updateTimeout, updateScript)
	hotfix := posturewin.PowerShell(ctx, psTimeout, hotFixScript)
	reboot := map[string]posturewin.Key{
		"WindowsUpdate RebootRequired": posturewin.KeyExists(registry.LOCAL_MACHINE, `SOFTWARE\Microsoft\Windows\CurrentVersion\WindowsUpdate\Auto Update\RebootRequired`),
		"CBS RebootPending":            posturewin.KeyExists(registry.LOCAL_MACHINE, `SOFTWARE\Microsoft\Windows\CurrentVersion\Component Based Servicing\RebootPending`),
	}
	return posturewin.Patch(search, hotfix, reboot, searched)
}

// Get-PnpDevice reports "no matching devices" as an error; only other
// errors mean the list could not be read.
const bluetoothScript = `$d = @(Get-PnpDevice -Class Bluetooth -ErrorAction SilentlyContinue -ErrorVariable e | Select-Object FriendlyName,InstanceId,Status,Present); ` +
	`$bad = @($e | Where-Object { $_.CategoryInfo.Category -ne 'ObjectNotFound' }); ` +
	`if ($bad.Count) { [Console]::Error.WriteLine($bad[0]); exit 1 }; ConvertTo-Json -InputObject $d`

func (windowsPlatform) bluetooth(ctx context.Context) *protocol.Bluetooth {
	return posturewin.ParseBluetooth(posturewin.PowerShell(ctx, psTimeout, bluetoothScript))
}

const (
	antivirusScript = `ConvertTo-Json -InputObject @(Get-CimInstance -Namespace root/SecurityCenter2 -ClassName AntivirusProduct | Select-Object displayName,productState)`
	defenderScript  = `Get-MpComputerStatus | Select-Object AMServiceEnabled,RealTimeProtectionEnabled,AntivirusEnabled,AntivirusSignatureLastUpdated | ConvertTo-Json`
	// The active store is the effective configuration, Group Policy
	// included; the default store is only the local settings.
	firewallScript = `ConvertTo-Json -InputObject @(Get-NetFirewallProfile -PolicyStore ActiveStore | Select-Object Name,Enabled)`
)

func (windowsPlatform) hygiene(ctx context.Context) *protocol.Hygiene {
	return posturewin.Hygiene(posturewin.HygieneInput{
		Antivirus:  posturewin.PowerShell(ctx, psTimeout, antivirusScript),
		Defender:   posturewin.PowerShell(ctx, psTimeout, defenderScript),
		Firewall:   posturewin.PowerShell(ctx, psTimeout, firewallScript),
		SecureBoot: posturewin.ReadDWORD(registry.LOCAL_MACHINE, `SYSTEM\CurrentControlSet\Control\SecureBoot\State`, "UEFISecureBootEnabled"),
	})
}
