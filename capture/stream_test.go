package capture_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"github.com/alpr-agent/alpr-agent/capture"
	"github.com/alpr-agent/alpr-agent/capture/capturetest"
)

// Test streams are small and slow so that a loaded 2-core machine keeps up.
const (
	streamW, streamH, streamFPS = 160, 120, 15
)

// needTool returns the path of a tool the stream tests need. Without it
// the test is skipped, except in CI (CI=true), where it fails.
func needTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not found; CI must install %s", name, pkg)
		}
		t.Skipf("%s not found: install %s to run this test", name, pkg)
	}
	return p
}

// rtspPython returns a Python that has GStreamer's RTSP server bindings.
func rtspPython(t *testing.T) string {
	t.Helper()
	const probe = "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer"
	for _, py := range []string{"python3", "/usr/bin/python3"} {
		if exec.Command(py, "-c", probe).Run() == nil {
			return py
		}
	}
	const pkgs = "python3-gi and gir1.2-gst-rtsp-server-1.0"
	if os.Getenv("CI") == "true" {
		t.Fatalf("no python3 with GstRtspServer; CI must install %s", pkgs)
	}
	t.Skipf("no python3 with GstRtspServer: install %s to run this test", pkgs)
	return ""
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T, network string) int {
	t.Helper()
	switch network {
	case "udp":
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	default:
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port
	}
}

// proc is a stream process the test started; stop kills it by its PID.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func startProc(t *testing.T, ready string, name string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stderr = &testLogWriter{t: t, prefix: filepath.Base(name)}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	readyc := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		signalled := ready == ""
		if signalled {
			close(readyc)
		}
		for sc.Scan() {
			if !signalled && strings.Contains(sc.Text(), ready) {
				signalled = true
				close(readyc)
			}
		}
		cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(p.stop)
	select {
	case <-readyc:
	case <-p.done:
		t.Fatalf("%s exited before it was ready", name)
	case <-time.After(20 * time.Second):
		t.Fatalf("%s not ready after 20s", name)
	}
	return p
}

func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Kill()
	<-p.done
}

// testLogWriter copies a child's stderr to the test log (seen with -v or
// on failure).
type testLogWriter struct {
	t      *testing.T
	prefix string
}

func (w *testLogWriter) Write(b []byte) (int, error) {
	w.t.Logf("%s: %s", w.prefix, strings.TrimSpace(string(b)))
	return len(b), nil
}

// startRTPSender streams RTP/JPEG of a moving test picture to
// 127.0.0.1:port until the test ends or it is stopped.
func startRTPSender(t *testing.T, port int) *proc {
	gst := needTool(t, "gst-launch-1.0", "gstreamer1.0-tools and gstreamer1.0-plugins-base/good")
	return startProc(t, "", gst, "-q",
		"videotestsrc", "is-live=true", "pattern=ball", "!",
		fmt.Sprintf("video/x-raw,width=%d,height=%d,framerate=%d/1,format=I420", streamW, streamH, streamFPS), "!",
		"jpegenc", "quality=50", "!", "rtpjpegpay", "!",
		"udpsink", "host=127.0.0.1", fmt.Sprintf("port=%d", port))
}

// rtpPipeline receives what startRTPSender sends.
func rtpPipeline(port int) string {
	return fmt.Sprintf(`udpsrc address=127.0.0.1 port=%d caps="application/x-rtp,media=video,encoding-name=JPEG,payload=26,clock-rate=90000" ! rtpjpegdepay ! jpegdec ! videoconvert ! video/x-raw,format=BGR ! appsink drop=true max-buffers=1 sync=false`, port)
}

// rtspServerScript serves a moving test picture at rtsp://127.0.0.1:PORT/cam
// with gst-rtsp-server, and prints "ready" once it listens.
const rtspServerScript = `import sys, gi
gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0')
from gi.repository import Gst, GstRtspServer, GLib
Gst.init(None)
port, w, h, fps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
server = GstRtspServer.RTSPServer()
server.set_address('127.0.0.1')
server.set_service(port)
factory = GstRtspServer.RTSPMediaFactory()
# rtpjpegpay takes 4:2:0 JPEG only, hence I420.
factory.set_launch('( videotestsrc is-live=true pattern=ball ! video/x-raw,width=%d,height=%d,framerate=%d/1,format=I420 ! jpegenc quality=50 ! rtpjpegpay name=pay0 pt=26 )' % (w, h, fps))
factory.set_shared(True)
server.get_mount_points().add_factory('/cam', factory)
if server.attach(None) == 0:
    sys.exit('rtsp server: cannot listen on 127.0.0.1:%s' % port)
print('ready', flush=True)
GLib.MainLoop().run()
`

// startRTSPServer starts the RTSP server on port; the script is written to
// dir.
func startRTSPServer(t *testing.T, py, dir string, port int) *proc {
	t.Helper()
	script := filepath.Join(dir, "rtsp_server.py")
	if err := os.WriteFile(script, []byte(rtspServerScript), 0o644); err != nil {
		t.Fatal(err)
	}
	return startProc(t, "ready", py, script, fmt.Sprint(port), fmt.Sprint(streamW), fmt.Sprint(streamH), fmt.Sprint(streamFPS))
}

func openSource(cfg capture.Config) func(t *testing.T) capture.Source {
	return func(t *testing.T) capture.Source {
		t.Helper()
		src, err := capture.Open(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		return src
	}
}

// checkFrames reads n frames from src: BGR, streamW x streamH, rising Seq,
// monotonic times.
func checkFrames(t *testing.T, src capture.Source, n int) {
	t.Helper()
	var prev capture.Frame
	for i := range n {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		f, err := src.Read(ctx)
		cancel()
		if err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
		if f.Img.Type() != gocv.MatTypeCV8UC3 || f.Img.Cols() != streamW || f.Img.Rows() != streamH {
			t.Errorf("frame %d: %v %dx%d, want 8UC3 %dx%d", i, f.Img.Type(), f.Img.Cols(), f.Img.Rows(), streamW, streamH)
		}
		if f.Camera != "gate" {
			t.Errorf("frame %d: Camera %q", i, f.Camera)
		}
		if i > 0 && (f.Seq <= prev.Seq || !f.Time.After(prev.Time)) {
			t.Errorf("frame %d: seq %d at %v after seq %d at %v", i, f.Seq, f.Time, prev.Seq, prev.Time)
		}
		prev = f
		f.Close()
	}
}

func TestStream_RTP(t *testing.T) {
	checkLeaks(t)
	port := freePort(t, "udp")
	startRTPSender(t, port)
	cfg := capture.Config{Name: "gate", Kind: capture.KindGStreamer, Path: rtpPipeline(port)}
	t.Run("Frames", func(t *testing.T) {
		src := openSource(cfg)(t)
		defer src.Close()
		checkFrames(t, src, 10)
	})
	t.Run("Contract", func(t *testing.T) {
		capturetest.RunSourceContract(t, openSource(cfg))
	})
}

func TestStream_RTSP(t *testing.T) {
	checkLeaks(t)
	needTool(t, "gst-launch-1.0", "gstreamer1.0-tools")
	py := rtspPython(t)
	port := freePort(t, "tcp")
	startRTSPServer(t, py, t.TempDir(), port)
	cfg := capture.Config{Name: "gate", Kind: capture.KindRTSP, Path: fmt.Sprintf("rtsp://127.0.0.1:%d/cam", port)}
	t.Run("Frames", func(t *testing.T) {
		src := openSource(cfg)(t)
		defer src.Close()
		checkFrames(t, src, 10)
	})
	t.Run("Contract", func(t *testing.T) {
		capturetest.RunSourceContract(t, openSource(cfg))
	})
}

// frameAfter waits for a frame stamped after t0, closing older ones, and
// returns its time.
func frameAfter(t *testing.T, r *capture.Runner, t0 time.Time) time.Time {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case f, ok := <-r.Frames():
			if !ok {
				t.Fatal("Frames() closed")
			}
			ft := f.Time
			f.Close()
			if ft.After(t0) {
				return ft
			}
		case <-deadline:
			t.Fatalf("no frame after the restart within 30s; stats %+v", r.Stats())
		}
	}
}

// drainUntil closes frames until cond holds.
func drainUntil(t *testing.T, r *capture.Runner, what string, cond func(capture.Stats) bool) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for !cond(r.Stats()) {
		select {
		case f, ok := <-r.Frames():
			if !ok {
				t.Fatal("Frames() closed")
			}
			f.Close()
		case <-time.After(5 * time.Millisecond):
		case <-deadline:
			t.Fatalf("timed out waiting for %s; stats %+v", what, r.Stats())
		}
	}
}

// testRestart runs a Runner on cfg, stops the stream, restarts it, and
// logs how long the Runner took to deliver frames again.
func testRestart(t *testing.T, cfg capture.Config, start func() *proc) {
	sender := start()
	r := capture.NewRunner(cfg, 4, nil)
	r.MinBackoff, r.MaxBackoff = 100*time.Millisecond, time.Second
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer closeRunner(t, r)
	drainUntil(t, r, "10 frames", func(s capture.Stats) bool { return s.FramesIn >= 10 })

	stopped := time.Now()
	sender.stop()
	drainUntil(t, r, "the stream failure", func(s capture.Stats) bool { return s.Failures >= 1 })
	t.Logf("stream failure noticed after %v: %s", time.Since(stopped).Round(time.Millisecond), r.Stats().LastError)
	if age := r.Stats().LastFrameAge; age <= 0 {
		t.Errorf("LastFrameAge = %v while the stream is down, want > 0", age)
	}

	restarted := time.Now()
	start()
	ft := frameAfter(t, r, restarted)
	st := r.Stats()
	t.Logf("frames again %v after the stream restarted (outage %v); stats: in %d, dropped %d, failures %d, reopens %d, fps %.1f",
		ft.Sub(restarted).Round(time.Millisecond), ft.Sub(stopped).Round(time.Millisecond),
		st.FramesIn, st.Dropped, st.Failures, st.Reopens, st.FPS)
	if st.Reopens < 1 {
		t.Errorf("Reopens = %d, want >= 1", st.Reopens)
	}
	if st.FPS <= 0 {
		t.Errorf("FPS = %v", st.FPS)
	}
}

func TestStream_RTPResumesAfterSenderRestart(t *testing.T) {
	checkLeaks(t)
	port := freePort(t, "udp")
	cfg := capture.Config{Name: "gate", Kind: capture.KindGStreamer, Path: rtpPipeline(port),
		Stream: capture.StreamOptions{StallTimeout: time.Second}}
	testRestart(t, cfg, func() *proc { return startRTPSender(t, port) })
}

func TestStream_RTSPResumesAfterServerRestart(t *testing.T) {
	checkLeaks(t)
	needTool(t, "gst-launch-1.0", "gstreamer1.0-tools")
	py := rtspPython(t)
	port := freePort(t, "tcp")
	dir := t.TempDir()
	cfg := capture.Config{Name: "gate", Kind: capture.KindRTSP, Path: fmt.Sprintf("rtsp://127.0.0.1:%d/cam", port),
		Stream: capture.StreamOptions{StallTimeout: 2 * time.Second}}
	testRestart(t, cfg, func() *proc { return startRTSPServer(t, py, dir, port) })
}

// A silent stream must not hang Open, Read, Close or the Runner: they give
// up at ctx or at the stall timeout, abandoning the blocked OpenCV call,
// and the stream cannot be opened twice until that call returns.
func TestStream_SilentStream(t *testing.T) {
	checkLeaks(t)
	port := freePort(t, "udp")
	cfg := capture.Config{Name: "gate", Kind: capture.KindGStreamer, Path: rtpPipeline(port),
		Stream: capture.StreamOptions{StallTimeout: 300 * time.Millisecond}}
	// reopen waits until the abandoned call ends (the sender is running).
	reopen := func() capture.Source {
		t.Helper()
		var src capture.Source
		eventually(t, "a reopen once the stream sends", func() bool {
			var err error
			src, err = capture.Open(context.Background(), cfg)
			return err == nil
		})
		return src
	}
	wantBlocked := func() {
		t.Helper()
		if _, err := capture.Open(context.Background(), cfg); !errors.Is(err, capture.ErrDevice) || !strings.Contains(err.Error(), "blocked") {
			t.Errorf("Open while the old call is blocked = %v, want ErrDevice saying blocked", err)
		}
	}

	_, err := capture.Open(context.Background(), cfg)
	if !errors.Is(err, capture.ErrDevice) || !strings.Contains(err.Error(), "udpsrc") {
		t.Fatalf("Open(silent) = %v, want ErrDevice naming the pipeline", err)
	}
	wantBlocked()
	sender := startRTPSender(t, port)
	src := reopen()
	checkFrames(t, src, 2)

	sender.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	_, err = src.Read(ctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Read(ctx with deadline) = %v, want DeadlineExceeded", err)
	}
	_, err = src.Read(context.Background())
	if !errors.Is(err, capture.ErrDevice) || !strings.Contains(err.Error(), "no frame for") || !strings.Contains(err.Error(), "udpsrc") {
		t.Errorf("Read(silent) = %v, want ErrDevice saying no frame and naming the pipeline", err)
	}
	closed := make(chan error, 1)
	go func() { closed <- src.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Close hangs on a silent stream")
	}
	wantBlocked()
	startRTPSender(t, port)
	src = reopen()
	checkFrames(t, src, 2)
	src.Close()

	t.Run("RunnerClose", func(t *testing.T) {
		port := freePort(t, "udp")
		silent := capture.Config{Name: "gate", Kind: capture.KindGStreamer, Path: rtpPipeline(port)}
		r := capture.NewRunner(silent, 2, nil)
		if err := r.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond) // let it block in a read
		closeRunner(t, r)
		// Release the abandoned read so it leaks nothing past the test.
		startRTPSender(t, port)
		eventually(t, "the abandoned read to end", func() bool {
			src, err := capture.Open(context.Background(), silent)
			if err == nil {
				src.Close()
			}
			return err == nil
		})
	})
}

func TestStream_OpenErrors(t *testing.T) {
	needTool(t, "gst-launch-1.0", "gstreamer1.0-tools")
	port := freePort(t, "tcp") // nothing listens there
	tests := []struct {
		name    string
		cfg     capture.Config
		want    []string
		notWant string
	}{
		{"RefusedURL", capture.Config{Kind: capture.KindRTSP, Path: fmt.Sprintf("rtsp://127.0.0.1:%d/cam", port)},
			[]string{"rtsp stream", fmt.Sprintf("rtsp://127.0.0.1:%d/cam", port)}, ""},
		{"PasswordMasked", capture.Config{Kind: capture.KindRTSP, Path: fmt.Sprintf("rtsp://admin:hunter2@127.0.0.1:%d/cam", port)},
			[]string{"admin:xxxxx@127.0.0.1"}, "hunter2"},
		{"UnknownElement", capture.Config{Kind: capture.KindGStreamer, Path: "nosuchelementxyz ! appsink"},
			[]string{"gstreamer pipeline", "nosuchelementxyz ! appsink"}, ""},
		{"UnlinkablePipeline", capture.Config{Kind: capture.KindGStreamer, Path: "audiotestsrc ! video/x-raw ! appsink"},
			[]string{"audiotestsrc ! video/x-raw ! appsink"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, err := capture.Open(context.Background(), tt.cfg)
			if err == nil {
				// A pipeline may start and fail at its first frame.
				_, err = src.Read(context.Background())
				src.Close()
			}
			if !errors.Is(err, capture.ErrDevice) {
				t.Fatalf("err = %v, want ErrDevice", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if tt.notWant != "" && strings.Contains(err.Error(), tt.notWant) {
				t.Errorf("error %q shows %q", err, tt.notWant)
			}
		})
	}
}

func TestConfig_ValidateStream(t *testing.T) {
	const pipe = "videotestsrc ! videoconvert ! appsink"
	tests := []struct {
		name  string
		cfg   capture.Config
		want  error
		field string
	}{
		{"RTSP", capture.Config{Kind: "rtsp", Path: "rtsp://10.0.0.5:554/stream1"}, nil, ""},
		{"RTSPS", capture.Config{Kind: "rtsp", Path: "rtsps://user:pw@cam.local/live", Stream: capture.StreamOptions{Transport: "udp", Latency: time.Second, StallTimeout: time.Second}}, nil, ""},
		{"GStreamer", capture.Config{Kind: "gstreamer", Path: pipe}, nil, ""},
		{"GStreamerAppsinkProps", capture.Config{Kind: "gstreamer", Path: "videotestsrc ! appsink drop=true max-buffers=1"}, nil, ""},
		{"HTTPURL", capture.Config{Kind: "rtsp", Path: "http://cam/x"}, capture.ErrInvalidConfig, "scheme"},
		{"NoHost", capture.Config{Kind: "rtsp", Path: "rtsp:///x"}, capture.ErrInvalidConfig, "no host"},
		{"QuoteInURL", capture.Config{Kind: "rtsp", Path: `rtsp://cam/x" ! fakesink`}, capture.ErrInvalidConfig, "path"},
		{"NoPath", capture.Config{Kind: "rtsp"}, capture.ErrInvalidConfig, "path"},
		{"NoAppsink", capture.Config{Kind: "gstreamer", Path: "videotestsrc ! autovideosink"}, capture.ErrInvalidConfig, "appsink"},
		{"AppsinkNotLast", capture.Config{Kind: "gstreamer", Path: "appsink"}, capture.ErrInvalidConfig, "appsink"},
		{"BadTransport", capture.Config{Kind: "rtsp", Path: "rtsp://cam/x", Stream: capture.StreamOptions{Transport: "http"}}, capture.ErrInvalidConfig, "stream.transport"},
		{"NegativeLatency", capture.Config{Kind: "rtsp", Path: "rtsp://cam/x", Stream: capture.StreamOptions{Latency: -1}}, capture.ErrInvalidConfig, "stream.latency"},
		{"NegativeStall", capture.Config{Kind: "gstreamer", Path: pipe, Stream: capture.StreamOptions{StallTimeout: -1}}, capture.ErrInvalidConfig, "stream.stall_timeout"},
		{"StreamOptionsOnFile", capture.Config{Kind: "file", Path: "a.avi", Stream: capture.StreamOptions{Transport: "tcp"}}, capture.ErrInvalidConfig, "stream options"},
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
			if err != nil && strings.Contains(err.Error(), ":pw@") {
				t.Errorf("error %q shows a password", err)
			}
		})
	}
}

func TestConfig_LiveStreams(t *testing.T) {
	for _, kind := range []string{capture.KindRTSP, capture.KindGStreamer} {
		if !(capture.Config{Kind: kind}).Live() {
			t.Errorf("Config{Kind:%q}.Live() = false; a stream must never be blocked", kind)
		}
	}
}
