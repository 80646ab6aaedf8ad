package capture

import (
	"strings"
	"testing"
	"time"
)

func TestRTSPPipeline(t *testing.T) {
	tests := []struct {
		name string
		opts StreamOptions
		want []string
		not  []string
	}{
		{"Default", StreamOptions{}, []string{`location="rtsp://cam/x"`, "latency=200 ", "protocols=tcp", "application/x-rtp,media=video", "appsink drop=true max-buffers=1 sync=false"}, nil},
		{"UDP", StreamOptions{Transport: "udp", Latency: 50 * time.Millisecond}, []string{"latency=50 ", "protocols=udp"}, nil},
		{"Auto", StreamOptions{Transport: "auto"}, nil, []string{"protocols="}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := rtspPipeline(Config{Kind: KindRTSP, Path: "rtsp://cam/x", Stream: tt.opts})
			for _, w := range tt.want {
				if !strings.Contains(p, w) {
					t.Errorf("pipeline %q lacks %q", p, w)
				}
			}
			for _, w := range tt.not {
				if strings.Contains(p, w) {
					t.Errorf("pipeline %q has %q", p, w)
				}
			}
		})
	}
}

func TestBlockedRegistry(t *testing.T) {
	done := make(chan struct{})
	markBlocked("p1", done)
	if !isBlocked("p1") || isBlocked("p2") {
		t.Fatal("p1 should be blocked, p2 not")
	}
	close(done)
	deadline := time.Now().Add(10 * time.Second)
	for isBlocked("p1") {
		if time.Now().After(deadline) {
			t.Fatal("p1 still blocked after its channel closed")
		}
		time.Sleep(time.Millisecond)
	}
}
