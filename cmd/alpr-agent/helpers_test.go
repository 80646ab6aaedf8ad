package main

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/alpr-agent/alpr-agent/capture/capturetest"
	"github.com/alpr-agent/alpr-agent/uplink/mqtttest"
)

// needDataset returns ../shared/datasets/<sub> of the project root. Missing
// data fails under CI and skips elsewhere (../shared/datasets/README.md).
func needDataset(t testing.TB, sub string) string {
	t.Helper()
	dir := filepath.Join("..", "..", "..", "shared", "datasets", sub)
	if _, err := os.Stat(dir); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("dataset %s is missing under CI: %v", dir, err)
		}
		t.Skipf("dataset %s not present: %v", dir, err)
	}
	return dir
}

// needModels points the recognizer at the project's .deps (make setup).
// Missing models fail under CI and skip elsewhere.
func needModels(t testing.TB) {
	t.Helper()
	rc := defaultRecognizeConfig()
	if os.Getenv("ALPR_MODEL_DIR") == "" {
		root, _ := filepath.Abs(filepath.Join("..", ".."))
		rc.ModelDir = filepath.Join(root, ".deps", "models")
		rc.RuntimeLib = filepath.Join(root, ".deps", "onnxruntime", "libonnxruntime.so.1")
		t.Setenv("ALPR_MODEL_DIR", rc.ModelDir)
		t.Setenv("ALPR_ORT_LIB", rc.RuntimeLib)
	}
	if _, err := os.Stat(rc.RuntimeLib); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("models missing under CI (make setup): %v", err)
		}
		t.Skipf("models not fetched (make setup): %v", err)
	}
}

func silentLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// noEnvOverrides blanks the ALPR_* overrides (make exports none, but a
// developer's shell may) for tests that check what a config file says.
func noEnvOverrides(t *testing.T) {
	for _, k := range []string{"ALPR_DEVICE", "ALPR_UPLINK_BROKER", "ALPR_GNSS_PORT", "ALPR_SPOOL_PATH", "ALPR_MODEL_DIR", "ALPR_ORT_LIB", "ALPR_LOG_LEVEL"} {
		t.Setenv(k, "")
	}
}

// loopingClipConfig is an agent on a small looping synthetic clip, a real
// mosquitto and no GNSS receiver: for tests of how the agent starts and stops.
func loopingClipConfig(t *testing.T) Config {
	t.Helper()
	needModels(t)
	work := t.TempDir()
	clip := filepath.Join(work, "clip.avi")
	if err := capturetest.WriteClip(clip, capturetest.SmallClip(20)); err != nil {
		t.Fatal(err)
	}
	broker := mqtttest.Start(t)
	cfg := demoConfig(broker.URL(), clip, "", work)
	cfg.Cameras[0].Loop = true
	return cfg
}
