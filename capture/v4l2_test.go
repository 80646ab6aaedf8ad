package capture_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"

	"github.com/alpr-agent/alpr-agent/capture"
	"github.com/alpr-agent/alpr-agent/capture/capturetest"
)

func TestConfig_ValidateV4L2(t *testing.T) {
	dev := func(c capture.Config) capture.Config {
		c.Kind, c.Path = capture.KindV4L2, "/dev/video0"
		return c
	}
	tests := []struct {
		name  string
		cfg   capture.Config
		want  error
		field string
	}{
		{"MJPG", dev(capture.Config{PixelFormat: "MJPG", Width: 1920, Height: 1080, FPS: 30, ExposureUS: 1000, V4L2Gain: 16}), nil, ""},
		{"MJPEGAlias", dev(capture.Config{PixelFormat: "mjpeg"}), nil, ""},
		{"YUYV", dev(capture.Config{PixelFormat: "YUYV"}), nil, ""},
		{"BadPixelFormat", dev(capture.Config{PixelFormat: "H2645"}), capture.ErrInvalidConfig, "pixel_format"},
		{"NegativeExposure", dev(capture.Config{ExposureUS: -5}), capture.ErrInvalidConfig, "exposure_us"},
		{"HugeExposure", dev(capture.Config{ExposureUS: 5e6}), capture.ErrInvalidConfig, "exposure_us"},
		{"GainInDB", dev(capture.Config{GainDB: 6}), capture.ErrInvalidConfig, "v4l2_gain"},
		{"NegativeGain", dev(capture.Config{V4L2Gain: -1}), capture.ErrInvalidConfig, "v4l2_gain"},
		{"V4L2GainOnFile", capture.Config{Kind: "file", Path: "a.avi", V4L2Gain: 3}, capture.ErrInvalidConfig, "v4l2_gain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Validate() = %v, want %v", err, tt.want)
			}
			if err != nil && !strings.Contains(err.Error(), tt.field) {
				t.Errorf("error %q does not name %q", err, tt.field)
			}
		})
	}
}

func TestV4L2_OpenErrors(t *testing.T) {
	t.Run("Missing", func(t *testing.T) {
		_, err := capture.Open(context.Background(), capture.Config{Kind: capture.KindV4L2, Path: "/dev/video-missing-77", PixelFormat: "MJPG"})
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "/dev/video-missing-77") {
			t.Errorf("err = %v, want fs.ErrNotExist naming the device", err)
		}
	})
	t.Run("NotAVideoDevice", func(t *testing.T) {
		_, err := capture.Open(context.Background(), capture.Config{Kind: capture.KindV4L2, Path: "/dev/null"})
		if !errors.Is(err, capture.ErrDevice) || !strings.Contains(err.Error(), "/dev/null") {
			t.Errorf("err = %v, want ErrDevice naming /dev/null", err)
		}
	})
}

// warnCamera is a fake camera whose driver refused a setting.
type warnCamera struct {
	*capturetest.Camera
	warns []error
}

func (c warnCamera) Warnings() []error { return c.warns }

func TestRunner_StatsWarningsAndAge(t *testing.T) {
	checkLeaks(t)
	r := capture.NewRunner(liveConfig(), 4, nil)
	r.Open = func(context.Context, capture.Config) (capture.Source, error) {
		cam := &capturetest.Camera{Spec: capturetest.SmallClip(50), Live: true}
		return warnCamera{cam, []error{fmt.Errorf("v4l2 device /dev/fake0: gain: asked 40, driver reports 0")}}, nil
	}
	if st := r.Stats(); st.LastFrameAge != 0 {
		t.Errorf("LastFrameAge before any frame = %v, want 0", st.LastFrameAge)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer closeRunner(t, r)
	f := <-r.Frames()
	f.Close()
	st := r.Stats()
	if len(st.Warnings) != 1 || !strings.Contains(st.Warnings[0], "gain") {
		t.Errorf("Warnings = %q, want the refused gain", st.Warnings)
	}
	if st.LastFrame.IsZero() || st.LastFrameAge < 0 {
		t.Errorf("LastFrame %v, LastFrameAge %v", st.LastFrame, st.LastFrameAge)
	}
}
