package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestCommandSkipsGlobalFlagsAndTheirValues(t *testing.T) {
	cmd, rest := command([]string{"--root", "/run/runc", "--log=/x.log", "--systemd-cgroup", "exec", "--process", "/p.json", "id"})
	if cmd != "exec" || !reflect.DeepEqual(rest, []string{"--process", "/p.json", "id"}) {
		t.Fatalf("command = %q %q", cmd, rest)
	}
	if cmd, _ := command([]string{"--debug"}); cmd != "" {
		t.Fatalf("no command expected, got %q", cmd)
	}
}

func TestFlagValueBothSpellings(t *testing.T) {
	for _, args := range [][]string{{"--bundle", "/b"}, {"--bundle=/b"}, {"-b", "/b"}} {
		if got := flagValue(args, "--bundle", "-b"); got != "/b" {
			t.Fatalf("flagValue(%q) = %q", args, got)
		}
	}
}

func TestPatchFileDropsTheCapabilityAndANegativeOOMScoreAdjOnly(t *testing.T) {
	dir := t.TempDir()
	spec := `{"ociVersion":"1.0.2","process":{"user":{"uid":0,"gid":0},"oomScoreAdj":-998,` +
		`"capabilities":{"bounding":["CAP_CHOWN","CAP_SYS_RESOURCE"],"effective":["CAP_SYS_RESOURCE"]}}}`
	path := filepath.Join(dir, "config.json")
	if err := os.WriteFile(path, []byte(spec), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := patchFor([]string{"--root", "/r", "create", "--bundle", dir, "id"}); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	raw, _ := os.ReadFile(path)
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	process := got["process"].(map[string]any)
	caps := process["capabilities"].(map[string]any)
	if !reflect.DeepEqual(caps["bounding"], []any{"CAP_CHOWN"}) || len(caps["effective"].([]any)) != 0 {
		t.Fatalf("capabilities = %v", caps)
	}
	if _, ok := process["oomScoreAdj"]; ok {
		t.Fatalf("negative oomScoreAdj kept: %v", process)
	}
	if info, _ := os.Stat(path); info.Mode().Perm() != 0o600 {
		t.Fatalf("mode changed to %v", info.Mode())
	}

	positive := filepath.Join(dir, "process.json")
	if err := os.WriteFile(positive, []byte(`{"oomScoreAdj":500,"args":["sh"]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := patchFor([]string{"exec", "-p", positive, "id"}); err != nil {
		t.Fatal(err)
	}
	raw, _ = os.ReadFile(positive)
	if string(raw) != `{"args":["sh"],"oomScoreAdj":500}` {
		t.Fatalf("positive oomScoreAdj must stay: %s", raw)
	}
}
