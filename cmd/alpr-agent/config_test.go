package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const minimalConfig = `
device: unit-7
cameras: [{name: front, kind: v4l2, path: /dev/video0}]
uplink: {broker: "ssl://broker:8883"}
`

func TestLoadConfig_ExampleValidates(t *testing.T) {
	cfg, err := LoadConfig(filepath.Join("..", "..", "testdata", "config", "cruiser.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Device != "unit-0042" || len(cfg.Cameras) != 1 || cfg.Cameras[0].Queue != 4 || !*cfg.Cameras[0].Realtime {
		t.Fatalf("unexpected config: %+v", cfg)
	}
}

func TestLoadConfig_Errors(t *testing.T) {
	for _, c := range []struct {
		name, body string
		want       []string // each must appear in the error
	}{
		{"OK", minimalConfig, nil},
		{"UnknownKey", minimalConfig + "spool: {paht: /tmp/x}\n", []string{`unknown key "paht"`, "line"}},
		{"UnknownTopKey", minimalConfig + "camera: {}\n", []string{`unknown key "camera"`}},
		{"BadDuration", minimalConfig + "retention: {max_age: soon}\n", []string{"soon"}},
		{"NoCamera", "device: u1\nuplink: {broker: \"ssl://b:8883\"}\n", []string{"cameras: at least one camera"}},
		{"BadKind", strings.Replace(minimalConfig, "v4l2", "usb", 1), []string{"cameras[0]", `"usb"`}},
		{"GigE", strings.Replace(minimalConfig, "{name: front, kind: v4l2, path: /dev/video0}", "{name: front, kind: gige, path: 192.168.1.20, pixel_format: BayerRG8, exposure_us: 2000, gain_db: 6}", 1), nil},
		{"RTSP", strings.Replace(minimalConfig, "{name: front, kind: v4l2, path: /dev/video0}", "{name: pole, kind: rtsp, path: \"rtsp://cam/stream\", stream: {transport: tcp, stall_timeout: 5s}}", 1), nil},
		{"BadTransport", strings.Replace(minimalConfig, "{name: front, kind: v4l2, path: /dev/video0}", "{name: pole, kind: rtsp, path: \"rtsp://cam/stream\", stream: {transport: carrier-pigeon}}", 1), []string{"cameras[0]", "carrier-pigeon"}},
		{"Plaintext", strings.Replace(minimalConfig, "ssl://broker:8883", "tcp://broker:1883", 1), []string{"uplink.broker", "insecure"}},
		{"PlaintextAllowed", strings.Replace(minimalConfig, `"ssl://broker:8883"`, `"tcp://broker:1883", insecure: true`, 1), nil},
		{"BadDevice", strings.Replace(minimalConfig, "unit-7", "unit/7", 1), []string{"device:"}},
		{"ZeroRetention", minimalConfig + "retention: {max_age: 0s}\n", []string{"retention.max_age"}},
		{"BadBaud", minimalConfig + "gnss: {port: /dev/ttyUSB0, baud: 1234}\n", []string{"gnss.baud", "1234"}},
		{"AutoBaud", minimalConfig + "gnss: {port: /dev/ttyUSB0, baud: 0}\n", nil},
		{"PiBoard", minimalConfig + "board: {profile: rpi5, ir_mode: strobe, ignition: true, ignition_hold_off: 10s, pins: {ir: GPIO12}}\n", nil},
		{"BadBoard", minimalConfig + "board: {profile: rpi9}\n", []string{"board", "rpi9"}},
		{"BadIRMode", minimalConfig + "board: {profile: rpi4, ir_mode: blink}\n", []string{"board", "blink"}},
		{"Several", "device: ''\ncameras: []\nuplink: {broker: ''}\n", []string{"device:", "cameras:", "uplink.broker"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := LoadConfig(writeConfig(t, c.body))
			if c.want == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want one mentioning %q", c.want)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestLoadConfig_EnvOverride(t *testing.T) {
	t.Setenv("ALPR_DEVICE", "unit-from-env")
	cfg, err := LoadConfig(writeConfig(t, minimalConfig))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Device != "unit-from-env" {
		t.Fatalf("device = %q, want the env override", cfg.Device)
	}
}

func TestLoadConfig_MissingFile(t *testing.T) {
	_, err := LoadConfig(filepath.Join(t.TempDir(), "nope.yaml"))
	if err == nil || !strings.Contains(err.Error(), "nope.yaml") {
		t.Fatalf("got %v, want an error naming the file", err)
	}
}

func TestRun_BadConfigIsAConfigError(t *testing.T) {
	p := writeConfig(t, minimalConfig+"spool: {paht: /tmp/x}\n")
	err := dispatch(t.Context(), []string{"run", "--config", p}, io.Discard, io.Discard)
	if !errors.As(err, new(configError)) {
		t.Fatalf("got %v, want a configError (exit 78)", err)
	}
}
