package linux

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cordon-mdm/cordon/protocol"
)

// knownAntimalware maps process names to the products they belong to.
var knownAntimalware = map[string]string{
	"clamd": "ClamAV", "freshclam": "ClamAV", "falcon-sensor": "CrowdStrike Falcon",
	"wdavdaemon": "Microsoft Defender for Endpoint", "mdatp": "Microsoft Defender for Endpoint",
	"sentinelone-ag": "SentinelOne", "s1-agent": "SentinelOne", "sophosspl": "Sophos", "sophos-spl": "Sophos",
	"cbagentd": "Carbon Black", "cbdaemon": "Carbon Black", "elastic-endpoint": "Elastic Defend",
	"ds_agent": "Trend Micro Deep Security", "ESETDaemon": "ESET", "eset_daemon": "ESET",
}

const secureBootVar = "sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"

// Hygiene reads firewall, anti-malware and Secure Boot.
func Hygiene(ctx context.Context, paths Paths, run Runner) *protocol.Hygiene {
	h := &protocol.Hygiene{}
	h.Source = "ufw/firewalld/nft, /proc/*/comm, efivars"
	h.FirewallOn, h.Firewall = nil, ""
	if on, name, reason := firewall(ctx, paths, run); reason != "" {
		h.SetUnknown("firewall_on", reason)
	} else {
		h.FirewallOn, h.Firewall = &on, name
	}
	if found, err := RunningAntimalware(paths.at("/proc")); err != nil {
		h.SetUnknown("antimalware_on", "cannot list processes: "+err.Error())
	} else {
		on := len(found) > 0
		h.AntimalwareOn, h.Antimalware = &on, found
	}
	if sb, reason := SecureBoot(paths.Root); reason != "" {
		h.SetUnknown("secure_boot", reason)
	} else {
		h.SecureBoot = &sb
	}
	// Root detection is a control of limited-feature mobile OSs (CJIS
	// 5.13.2 (d)): a desktop Linux system has administrators by design.
	// That is a statement about the platform, not a failed read.
	h.SetNotApplicable("rooted_suspected", "a desktop Linux system has administrators by design")
	return h
}

// firewall asks the front-ends first (their "active" is what the admin
// configured) and falls back to the kernel's nftables ruleset.
func firewall(ctx context.Context, paths Paths, run Runner) (on bool, name, reason string) {
	if exists(paths.at("/usr/sbin/ufw")) {
		if out, err := run(ctx, "ufw", "status"); err == nil {
			return strings.Contains(string(out), "Status: active"), "ufw", ""
		}
	}
	if exists(paths.at("/usr/bin/firewall-cmd")) {
		out, err := run(ctx, "firewall-cmd", "--state")
		if err == nil || strings.Contains(string(out), "not running") {
			return strings.TrimSpace(string(out)) == "running", "firewalld", ""
		}
	}
	if exists(paths.at("/usr/sbin/nft")) {
		out, err := run(ctx, "nft", "list", "ruleset")
		if err != nil {
			return false, "", "nft list ruleset: " + err.Error()
		}
		return NftFiltersInput(string(out)), "nftables", ""
	}
	return false, "", "no firewall front-end (ufw, firewalld) or nft found"
}

// NftFiltersInput reports whether any chain hooked on input drops by
// policy or holds a rule: an empty accept-all chain filters nothing.
func NftFiltersInput(ruleset string) bool {
	inChain, rules := false, 0
	for _, line := range strings.Split(ruleset, "\n") {
		l := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(l, "chain "):
			inChain, rules = false, 0
		case strings.HasPrefix(l, "type filter hook input"):
			inChain = true
			if strings.Contains(l, "policy drop") || strings.Contains(l, "policy reject") {
				return true
			}
		case l == "}":
			if inChain && rules > 0 {
				return true
			}
			inChain = false
		case inChain && l != "":
			rules++
		}
	}
	return false
}

// RunningAntimalware lists known anti-malware products with a running
// process, from /proc/<pid>/comm.
func RunningAntimalware(proc string) ([]string, error) {
	entries, err := os.ReadDir(proc)
	if err != nil {
		return nil, err
	}
	var found []string
	for _, e := range entries {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		comm, err := os.ReadFile(filepath.Join(proc, e.Name(), "comm"))
		if err != nil {
			continue // the process exited
		}
		if p, ok := knownAntimalware[strings.TrimSpace(string(comm))]; ok && !slices.Contains(found, p) {
			found = append(found, p)
		}
	}
	slices.Sort(found)
	return found, nil
}

// SecureBoot reads the UEFI SecureBoot variable: four attribute bytes,
// then 1 when enforcing.
func SecureBoot(root string) (on bool, reason string) {
	b, err := os.ReadFile(filepath.Join(root, secureBootVar))
	if err != nil {
		if _, e := os.Stat(filepath.Join(root, "sys/firmware/efi")); e != nil {
			return false, "" // legacy BIOS boot: nothing verifies the boot chain
		}
		return false, "SecureBoot EFI variable unreadable: " + err.Error()
	}
	if len(b) < 5 {
		return false, "SecureBoot EFI variable is truncated"
	}
	return b[4] == 1, ""
}
