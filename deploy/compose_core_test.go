package deploy

import (
	"os"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestComposeForbidsCoreDumps: a crash must write no core dump of answers or
// keys. The systemd units say LimitCORE=0 (deploy/check.sh); compose.yaml,
// the same topology, says ulimits core 0 for the services that hold them
// (found missing by review5).
func TestComposeForbidsCoreDumps(t *testing.T) {
	b, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Services map[string]struct {
			Ulimits map[string]any `yaml:"ulimits"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"intake", "transfer", "clinical"} {
		core, ok := c.Services[name].Ulimits["core"]
		if !ok || (core != 0 && core != "0") {
			if m, isMap := core.(map[string]any); !isMap || m["soft"] != 0 || m["hard"] != 0 {
				t.Errorf("compose service %s: ulimits.core = %v, want 0 (no core dumps, as the systemd units' LimitCORE=0)", name, core)
			}
		}
	}
}
