package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestExampleConfigs: every example an installer may start from loads and
// validates, and says what its kind of unit needs.
func TestExampleConfigs(t *testing.T) {
	noEnvOverrides(t)
	for _, c := range []struct {
		file  string
		check func(t *testing.T, cfg Config)
	}{
		{"cruiser.yaml", func(t *testing.T, cfg Config) {
			if cfg.GNSS.Port == "" || !cfg.Board.Ignition || cfg.Cameras[0].Kind != "v4l2" {
				t.Errorf("a cruiser has a GNSS port, ignition sense and a USB camera: %+v", cfg)
			}
		}},
		{"pole.yaml", func(t *testing.T, cfg Config) {
			if cfg.GNSS.Port != "" {
				t.Errorf("a pole has no GNSS receiver, got port %q", cfg.GNSS.Port)
			}
			kinds := map[string]bool{}
			for _, cam := range cfg.Cameras {
				kinds[cam.Kind] = true
			}
			if !kinds["rtsp"] || !kinds["gige"] {
				t.Errorf("the pole example shows an RTSP and a GigE camera, got %v", kinds)
			}
			if m := cfg.Cameras[0].Motion; !m.enabled() || len(m.Zone) != 1 || m.KeepAlive != 2*time.Second {
				t.Errorf("the pole example shows a motion zone: %+v", m)
			}
			if cfg.Board.Ignition || cfg.Board.Profile != "none" {
				t.Errorf("a pole PC has no ignition or GPIO: %+v", cfg.Board)
			}
			if cfg.Diag.Listen == "" || cfg.Diag.Username == "" {
				t.Errorf("the pole's status page is on the cabinet LAN, behind basic auth: %+v", cfg.Diag)
			}
		}},
		{"repo.yaml", func(t *testing.T, cfg Config) {
			if cfg.Retention.MaxAge < 7*24*time.Hour {
				t.Errorf("a standalone unit works offline for days: retention %v", cfg.Retention.MaxAge)
			}
			if cfg.Spool.MaxBytes < 8<<30 {
				t.Errorf("a standalone unit needs a big spool: %d bytes", cfg.Spool.MaxBytes)
			}
			if cfg.GNSS.Port == "" || !cfg.Board.Ignition {
				t.Errorf("a repossession car has GNSS and ignition sense: %+v %+v", cfg.GNSS, cfg.Board)
			}
		}},
	} {
		t.Run(strings.TrimSuffix(c.file, ".yaml"), func(t *testing.T) {
			cfg, err := LoadConfig(filepath.Join("..", "..", "testdata", "config", c.file))
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Log.Format != "json" {
				t.Errorf("units log JSON to the journal, got log.format %q", cfg.Log.Format)
			}
			if !strings.HasPrefix(cfg.Uplink.Broker, "ssl://") || cfg.Uplink.Insecure {
				t.Errorf("units talk TLS to the broker: %q insecure=%v", cfg.Uplink.Broker, cfg.Uplink.Insecure)
			}
			if cfg.Recognize.ModelDir != "/usr/lib/alpr-agent/models" || cfg.Recognize.RuntimeLib != "/usr/lib/alpr-agent/libonnxruntime.so.1" {
				t.Errorf("examples point at the packaged models and runtime: %+v", cfg.Recognize)
			}
			c.check(t, cfg)
		})
	}
}

// TestPackagedConfig: /etc/alpr-agent/config.yaml as shipped is complete
// but for the two values only the installer knows, and the error names
// exactly those; with them (here through the environment) it validates.
func TestPackagedConfig(t *testing.T) {
	noEnvOverrides(t)
	path := filepath.Join("..", "..", "packaging", "config.yaml")
	_, err := LoadConfig(path)
	if err == nil {
		t.Fatal("the packaged config validated without a device and a broker")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "device:") || !strings.HasPrefix(lines[1], "uplink.broker:") {
		t.Fatalf("want errors for device and uplink.broker only, got:\n%v", err)
	}
	t.Setenv("ALPR_DEVICE", "unit-0001")
	t.Setenv("ALPR_UPLINK_BROKER", "ssl://mqtt.fleet.example:8883")
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatalf("with device and broker set: %v", err)
	}
	want := DefaultConfig()
	if cfg.Recognize.ModelDir != want.Recognize.ModelDir || cfg.Recognize.RuntimeLib != want.Recognize.RuntimeLib ||
		cfg.Spool.Path != want.Spool.Path || cfg.Log.Format != "json" || cfg.GNSS.Port != "" || cfg.Board.Profile != "none" {
		t.Errorf("packaged config strays from the packaged layout: %+v", cfg)
	}
	if cfg.Spool.Path != "/var/lib/alpr-agent/spool.db" {
		t.Errorf("spool.path %q is not in the unit's StateDirectory", cfg.Spool.Path)
	}
}
