package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alpr-agent/alpr-agent/spool"
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
		{"Motion", strings.Replace(minimalConfig, "path: /dev/video0}", "path: /dev/video0, motion: {zone: [[[0, 0.5], [1, 1]]], threshold: 0.01, keepalive: 5s, hold: 500ms}}", 1), nil},
		{"MotionOff", strings.Replace(minimalConfig, "path: /dev/video0}", "path: /dev/video0, motion: {enabled: false}}", 1), nil},
		{"BadMotionZone", strings.Replace(minimalConfig, "path: /dev/video0}", "path: /dev/video0, motion: {zone: [[[0, 0.5], [2, 1]]]}}", 1), []string{"cameras[0].motion", "zone[0]"}},
		{"MissingMotionMask", strings.Replace(minimalConfig, "path: /dev/video0}", "path: /dev/video0, motion: {mask: /nonexistent/mask.png}}", 1), []string{"cameras[0].motion.mask", "/nonexistent/mask.png"}},
		{"Several", "device: ''\ncameras: []\nuplink: {broker: ''}\n", []string{"device:", "cameras:", "uplink.broker"}},
		{"FullPolicy", minimalConfig + "spool: {path: /tmp/s.db, full_policy: drop_oldest, key_file: /etc/alpr-agent/spool.key, key_period: 30m}\n", nil},
		{"BadFullPolicy", minimalConfig + "spool: {path: /tmp/s.db, full_policy: drop_newest}\n", []string{"spool.full_policy", "drop_newest"}},
		{"Formats", minimalConfig + "recognize: {formats: [\"^[A-Z]{3}[0-9]{4}$\", \"^[0-9][A-Z]{3}[0-9]{3}$\"]}\n", nil},
		{"BadFormat", minimalConfig + "recognize: {formats: [\"^[A-Z\"]}\n", []string{"recognize.formats[0]"}},
		{"BadKeyPeriod", minimalConfig + "spool: {path: /tmp/s.db, key_period: 0s}\n", []string{"spool.key_period"}},
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

// TestRun_BadSpoolKeyIsAConfigError: a key file that is missing, too open
// or the wrong key for the spool is the installer's to fix: exit 78, and
// the spool file is left as it was.
func TestRun_BadSpoolKeyIsAConfigError(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "spool.key")
	if err := os.WriteFile(key, bytes.Repeat([]byte{7}, 32), 0o644); err != nil {
		t.Fatal(err)
	}
	body := minimalConfig + fmt.Sprintf("spool: {path: %q, key_file: %q}\n", filepath.Join(dir, "spool.db"), key)
	err := dispatch(t.Context(), []string{"run", "--config", writeConfig(t, body)}, io.Discard, io.Discard)
	if !errors.As(err, new(configError)) || !strings.Contains(err.Error(), "spool.key_file") {
		t.Fatalf("group-readable key: got %v, want a configError naming spool.key_file", err)
	}

	// A spool written with one key, then the agent configured with another.
	good := bytes.Repeat([]byte{1}, 32)
	sp, err := spool.Open(filepath.Join(dir, "spool.db"), spool.Options{Key: good})
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.Put(t.Context(), spool.Record{ID: "r1", Payload: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	sp.Close()
	if err := os.WriteFile(key, bytes.Repeat([]byte{2}, 32), 0o600); err != nil {
		t.Fatal(err)
	}
	err = dispatch(t.Context(), []string{"run", "--config", writeConfig(t, body)}, io.Discard, io.Discard)
	if !errors.As(err, new(configError)) || !errors.Is(err, spool.ErrKey) {
		t.Fatalf("wrong key: got %v, want a configError wrapping spool.ErrKey", err)
	}
	sp, err = spool.Open(filepath.Join(dir, "spool.db"), spool.Options{Key: good})
	if err != nil {
		t.Fatalf("spool after the refused start: %v", err)
	}
	defer sp.Close()
	if sp.Len() != 1 {
		t.Fatalf("spool holds %d records after the refused start, want 1", sp.Len())
	}
}

func TestRun_BadConfigIsAConfigError(t *testing.T) {
	p := writeConfig(t, minimalConfig+"spool: {paht: /tmp/x}\n")
	err := dispatch(t.Context(), []string{"run", "--config", p}, io.Discard, io.Discard)
	if !errors.As(err, new(configError)) {
		t.Fatalf("got %v, want a configError (exit 78)", err)
	}
}
