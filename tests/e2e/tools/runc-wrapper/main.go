// Command runc-wrapper lets privileged containers (kind nodes, and kube-proxy inside them) start on machines
// whose capability bounding set lacks CAP_SYS_RESOURCE, as some CI sandboxes do.
//
// A privileged container asks runc for every capability, and the CRI asks for a negative oom_score_adj for
// sandboxes; both need CAP_SYS_RESOURCE, so runc fails with "unable to apply caps: operation not permitted" or
// "can't get final child's PID from pipe". The wrapper removes what the machine cannot grant from the OCI spec
// runc is about to apply (the bundle's config.json on create/run, the --process file on exec) and then execs the
// real runc with the same arguments. On a machine that has CAP_SYS_RESOURCE it changes nothing.
//
// Docker uses it as its default runtime (dockerd --add-runtime), the kind node's containerd as its runc
// BinaryName; see scripts/e2e/docker-up.sh and scripts/build-e2e-images.sh.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

const capSysResource = 24 // linux/capability.h

// runc's global flags that take a value (`--root DIR`); the first other non-flag argument is the command.
var globalValueFlags = map[string]bool{"--root": true, "--log": true, "--log-format": true, "--criu": true, "--rootless": true}

func main() {
	args := os.Args[1:]
	if !boundingSetHas(capSysResource) {
		if err := patchFor(args); err != nil {
			fmt.Fprintf(os.Stderr, "runc-wrapper: %v\n", err)
			os.Exit(1)
		}
	}
	real, err := realRunc()
	if err != nil {
		fmt.Fprintf(os.Stderr, "runc-wrapper: %v\n", err)
		os.Exit(1)
	}
	err = syscall.Exec(real, append([]string{"runc"}, args...), os.Environ())
	fmt.Fprintf(os.Stderr, "runc-wrapper: exec %s: %v\n", real, err)
	os.Exit(1)
}

// patchFor edits the spec file that the runc command in args will read.
func patchFor(args []string) error {
	cmd, rest := command(args)
	switch cmd {
	case "create", "run":
		bundle := flagValue(rest, "--bundle", "-b")
		if bundle == "" {
			bundle = "."
		}
		return patchFile(filepath.Join(bundle, "config.json"), func(spec map[string]any) {
			if process, ok := spec["process"].(map[string]any); ok {
				patchProcess(process)
			}
		})
	case "exec":
		if path := flagValue(rest, "--process", "-p"); path != "" {
			return patchFile(path, patchProcess)
		}
	}
	return nil
}

func command(args []string) (string, []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			return a, args[i+1:]
		}
		if globalValueFlags[a] {
			i++ // skip the flag's value
		}
	}
	return "", nil
}

func flagValue(args []string, names ...string) string {
	for i, a := range args {
		for _, n := range names {
			if a == n && i+1 < len(args) {
				return args[i+1]
			}
			if v, ok := strings.CutPrefix(a, n+"="); ok {
				return v
			}
		}
	}
	return ""
}

// patchProcess drops CAP_SYS_RESOURCE from every capability set and a negative oomScoreAdj (lowering it needs
// that capability too; positive values do not).
func patchProcess(process map[string]any) {
	if caps, ok := process["capabilities"].(map[string]any); ok {
		for set, list := range caps {
			names, ok := list.([]any)
			if !ok {
				continue
			}
			kept := make([]any, 0, len(names))
			for _, n := range names {
				if n != "CAP_SYS_RESOURCE" {
					kept = append(kept, n)
				}
			}
			caps[set] = kept
		}
	}
	if adj, ok := process["oomScoreAdj"].(json.Number); ok {
		if v, err := adj.Int64(); err == nil && v < 0 {
			delete(process, "oomScoreAdj")
		}
	}
}

func patchFile(path string, patch func(map[string]any)) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber() // keep uid/gid and limits exactly as written
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	patch(doc)
	out, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	return os.WriteFile(path, out, info.Mode().Perm())
}

func boundingSetHas(capability uint) bool {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return true // cannot tell: change nothing
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if hex, ok := strings.CutPrefix(line, "CapBnd:"); ok {
			mask, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
			return err != nil || mask&(1<<capability) != 0
		}
	}
	return true
}

// realRunc finds the runc binary this wrapper stands in front of (never the wrapper itself).
func realRunc() (string, error) {
	self, _ := os.Executable()
	candidates := []string{os.Getenv("RUNC_WRAPPER_REAL")}
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		candidates = append(candidates, filepath.Join(dir, "runc"))
	}
	candidates = append(candidates, "/usr/sbin/runc", "/usr/bin/runc", "/usr/local/sbin/runc", "/usr/local/bin/runc")
	for _, c := range candidates {
		if c == "" || c == self {
			continue
		}
		if info, err := os.Stat(c); err == nil && info.Mode().IsRegular() && info.Mode()&0o111 != 0 {
			if resolved, _ := filepath.EvalSymlinks(c); resolved == self {
				continue
			}
			return c, nil
		}
	}
	return "", fmt.Errorf("no runc found (set RUNC_WRAPPER_REAL)")
}
