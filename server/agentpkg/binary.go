package agentpkg

import (
	"bytes"
	"debug/elf"
	"debug/macho"
	"debug/pe"

	"github.com/cordon-mdm/cordon/internal/input"
)

// CheckBinary refuses an agent binary that is not an executable for
// goos/goarch: a package for a patrol car's laptop holding the wrong
// build would install and never run, and nobody would know until the
// device failed to appear.
func CheckBinary(b []byte, goos, goarch string) error {
	got := "neither ELF, Mach-O nor PE"
	switch goos {
	case "linux":
		if f, err := elf.NewFile(bytes.NewReader(b)); err == nil {
			want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[goarch]
			if f.Machine == want && f.Type == elf.ET_EXEC || f.Machine == want && f.Type == elf.ET_DYN {
				return nil
			}
			got = "ELF for " + f.Machine.String()
		}
	case "darwin":
		if f, err := macho.NewFile(bytes.NewReader(b)); err == nil {
			want := map[string]macho.Cpu{"amd64": macho.CpuAmd64, "arm64": macho.CpuArm64}[goarch]
			if f.Cpu == want && f.Type == macho.TypeExec {
				return nil
			}
			got = "Mach-O for " + f.Cpu.String()
		}
	case "windows":
		if f, err := pe.NewFile(bytes.NewReader(b)); err == nil {
			want := map[string]uint16{"amd64": pe.IMAGE_FILE_MACHINE_AMD64, "arm64": pe.IMAGE_FILE_MACHINE_ARM64}[goarch]
			if f.Machine == want {
				return nil
			}
			got = "PE for another machine"
		}
	}
	return input.Errorf("agent_binary", "not a %s/%s executable (%s)", goos, goarch, got)
}
