// Package macos turns the output of macOS's own tools (ioreg, sysadminctl,
// defaults, pmset, fdesetup, sw_vers, softwareupdate, system_profiler,
// socketfilterfw, csrutil, xprotect) and files (InstallHistory.plist,
// XProtect.bundle's Info.plist) into posture sections. It runs nothing itself:
// the darwin glue in package posture runs the tools and hands each run
// over as an Output, so that every rule here is tested on any build host.
//
// A value that cannot be read is left empty and explained in the
// section's Unknown map, never guessed.
package macos
