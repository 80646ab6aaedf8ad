//go:build linux && !noaravis

package capture_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"github.com/alpr-agent/alpr-agent/capture"
	"github.com/alpr-agent/alpr-agent/capture/capturetest"
)

// The fake camera (Debian package aravis-tools) serves GVCP on a fixed UDP
// port of its address, and Aravis cannot reach it on another loopback
// address, so only one can run per machine: the tests take a file lock
// around each fake camera's life, which also serialises test binaries that
// run at once (go test ./... runs packages in parallel).
const (
	fakeCameraBin  = "arv-fake-gv-camera-0.8"
	fakeCameraAddr = "127.0.0.1"
	fakeCameraLock = "alpr-agent-arv-fake-gv-camera.lock"
)

// fakeCamera is one arv-fake-gv-camera-0.8 process at a time, restartable.
type fakeCamera struct {
	t    *testing.T
	bin  string
	args []string
	log  string
	cmd  *exec.Cmd
	done chan struct{}
}

// newFakeCamera finds the binary (skipping the test without it unless
// CI=true), takes the machine-wide lock and starts the camera. extra are
// more flags (e.g. "-r", "50").
func newFakeCamera(t *testing.T, extra ...string) *fakeCamera {
	t.Helper()
	bin, err := exec.LookPath(fakeCameraBin)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not found (install aravis-tools): %v", fakeCameraBin, err)
		}
		t.Skipf("%s not found; install aravis-tools to run GigE tests", fakeCameraBin)
	}
	lockFakeCamera(t)
	c := &fakeCamera{
		t:    t,
		bin:  bin,
		args: append([]string{"-i", fakeCameraAddr}, extra...),
		log:  filepath.Join(t.TempDir(), "fake-camera.log"),
	}
	t.Cleanup(c.kill)
	c.start()
	return c
}

func lockFakeCamera(t *testing.T) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(os.TempDir(), fakeCameraLock), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			f.Close()
			t.Fatalf("lock fake camera: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Cleanup(func() { f.Close() }) // closing releases the lock
}

func (c *fakeCamera) start() {
	c.t.Helper()
	out, err := os.OpenFile(c.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(c.bin, c.args...)
	cmd.Stdout, cmd.Stderr = out, out
	// The camera must not outlive a test binary that crashes.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("start fake camera: %v", err)
	}
	c.cmd, c.done = cmd, make(chan struct{})
	go func(done chan struct{}) { cmd.Wait(); close(done) }(c.done)
	// It exits at once when it cannot bind (another camera is running).
	select {
	case <-c.done:
		b, _ := os.ReadFile(c.log)
		c.t.Fatalf("fake camera %v exited: %s", c.args, b)
	case <-time.After(300 * time.Millisecond):
	}
}

func (c *fakeCamera) kill() {
	if c.cmd == nil {
		return
	}
	c.cmd.Process.Kill()
	<-c.done
	c.cmd = nil
}

// gigeConfig is a small, fast frame from the fake camera.
func gigeConfig() capture.Config {
	return capture.Config{
		Name: "gige", Kind: capture.KindGigE, Path: fakeCameraAddr,
		Width: 320, Height: 240, FPS: 25, PixelFormat: "BayerRG8",
	}
}

// openGigE opens cfg, retrying while the fake camera starts up.
func openGigE(t *testing.T, cfg capture.Config) *capture.GigE {
	t.Helper()
	var err error
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		var src capture.Source
		if src, err = capture.Open(context.Background(), cfg); err == nil {
			t.Cleanup(func() { src.Close() })
			return src.(*capture.GigE)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("open fake camera: %v", err)
	return nil
}

func TestGigE_Contract(t *testing.T) {
	newFakeCamera(t)
	capturetest.RunSourceContract(t, func(t *testing.T) capture.Source {
		return openGigE(t, gigeConfig())
	})
}

// TestGigE_Frames reads frames for a while in each format and checks their
// size, type and rate against the config.
func TestGigE_Frames(t *testing.T) {
	newFakeCamera(t)
	for _, format := range []string{"Mono8", "BayerGR8", "BayerRG8"} {
		t.Run(format, func(t *testing.T) {
			checkLeaks(t)
			cfg := gigeConfig()
			cfg.PixelFormat = format
			cfg.ExposureUS, cfg.GainDB = 5000, 3
			src := openGigE(t, cfg)
			if w := src.Warnings(); len(w) != 0 {
				t.Errorf("warnings for settings the fake camera has: %v", w)
			}
			if src.PixelFormat() != format {
				t.Errorf("camera sends %s, want %s", src.PixelFormat(), format)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			const n = 25
			var first, last capture.Frame
			for i := range n {
				f, err := src.Read(ctx)
				if err != nil {
					t.Fatalf("read %d: %v", i, err)
				}
				if f.Img.Cols() != cfg.Width || f.Img.Rows() != cfg.Height || f.Img.Type() != gocv.MatTypeCV8UC3 {
					t.Fatalf("frame %d: %dx%d %v, want %dx%d BGR", i, f.Img.Cols(), f.Img.Rows(), f.Img.Type(), cfg.Width, cfg.Height)
				}
				if f.Camera != cfg.Name {
					t.Errorf("Camera = %q", f.Camera)
				}
				switch i {
				case 0:
					first = f
				case n - 1:
					last = f
				default:
					f.Close()
				}
			}
			defer first.Close()
			defer last.Close()
			if format == "Mono8" { // grey stays grey through GrayToBGR
				v := last.Img.GetVecbAt(cfg.Height/2, cfg.Width/2)
				if v[0] != v[1] || v[1] != v[2] {
					t.Errorf("Mono8 pixel %v is not grey", v)
				}
			}
			rate := float64(last.Seq-first.Seq) / last.Time.Sub(first.Time).Seconds()
			t.Logf("%s: %.1f fps measured over %d frames, %.0f configured; incomplete %d",
				format, rate, last.Seq-first.Seq, cfg.FPS, src.Incomplete())
			// Generous: this checks the setting took, not the scheduler.
			if rate < cfg.FPS/2 || rate > cfg.FPS*1.5 {
				t.Errorf("rate %.1f fps, configured %.0f", rate, cfg.FPS)
			}
		})
	}
}

// TestGigE_Settings checks that a value the camera cannot take is a
// warning, not a failure, and that a camera that does not exist fails.
func TestGigE_Settings(t *testing.T) {
	newFakeCamera(t)
	cfg := gigeConfig()
	cfg.GainDB = 50 // the fake camera's gain goes to 10 dB
	src := openGigE(t, cfg)
	w := src.Warnings()
	if len(w) != 1 || !strings.Contains(w[0].Error(), "gain") {
		t.Errorf("warnings = %v, want one about gain", w)
	}
	f, err := src.Read(context.Background())
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	f.Close()

	src.Close()

	// A bare serial number is found by discovery.
	cfg.GainDB = 0
	cfg.Path = "GV01" // the fake camera's default serial
	if src := openGigE(t, cfg); src.DeviceID() != "GV01" {
		t.Errorf("opened %q by serial, DeviceID %q", cfg.Path, src.DeviceID())
	}

	cfg.Path = "NoSuchCamera-XYZ"
	if s, err := capture.Open(context.Background(), cfg); !errors.Is(err, capture.ErrDevice) {
		if err == nil {
			s.Close()
		}
		t.Errorf("Open(missing camera) = %v, want ErrDevice", err)
	}
}

// frameLog is a Runner consumer that remembers what arrived.
type frameLog struct {
	mu   sync.Mutex
	n    int
	last capture.Frame // Img closed; Seq and Time only
	bad  string
}

func consume(t *testing.T, r *capture.Runner, cfg capture.Config) *frameLog {
	l := &frameLog{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for f := range r.Frames() {
			l.mu.Lock()
			l.n++
			if f.Img.Cols() != cfg.Width || f.Img.Rows() != cfg.Height || f.Img.Type() != gocv.MatTypeCV8UC3 {
				l.bad = "frame is not a BGR Mat of the configured size"
			}
			l.last = f
			l.mu.Unlock()
			f.Close()
		}
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := r.Close(ctx); err != nil {
			t.Errorf("close runner: %v", err)
		}
		<-done
		if l.bad != "" {
			t.Error(l.bad)
		}
	})
	return l
}

func (l *frameLog) count() (int, time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n, l.last.Time
}

// TestGigE_Reconnect kills the camera under a Runner, restarts it and waits
// for frames again. It logs the recovery time and asserts none.
func TestGigE_Reconnect(t *testing.T) {
	cam := newFakeCamera(t)
	cfg := gigeConfig()
	r := capture.NewRunner(cfg, 4, nil)
	r.MinBackoff, r.MaxBackoff = 100*time.Millisecond, time.Second
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	l := consume(t, r, cfg)
	eventually(t, "first frames", func() bool { n, _ := l.count(); return n >= 10 })

	killed := time.Now()
	cam.kill()
	eventually(t, "the runner to notice the camera is gone", func() bool { return r.Stats().Failures >= 1 })
	noticed := time.Now()
	t.Logf("camera loss noticed after %v: %s", noticed.Sub(killed).Round(time.Millisecond), r.Stats().LastError)

	restarted := time.Now()
	cam.start()
	eventually(t, "frames after the camera restarts", func() bool {
		_, last := l.count()
		return last.After(restarted) && r.Stats().Reopens >= 1
	})
	_, first := l.count()
	st := r.Stats()
	t.Logf("frames resumed %v after the camera restarted (%v after it was killed); stats %+v",
		first.Sub(restarted).Round(time.Millisecond), first.Sub(killed).Round(time.Millisecond), st)
	n0, _ := l.count()
	eventually(t, "more frames", func() bool { n, _ := l.count(); return n >= n0+10 })
	// The lost camera is released in the background (its control-channel
	// writes time out for about ten seconds); that teardown must not break
	// the new connection to the restarted camera.
	released := make(chan struct{})
	go func() { capture.WaitGigEReleased(); close(released) }()
	select {
	case <-released:
	case <-time.After(30 * time.Second):
		t.Fatal("the lost camera was not released within 30 s")
	}
	t.Logf("lost camera released %v after it was killed", time.Since(killed).Round(time.Millisecond))
	n1, _ := l.count()
	eventually(t, "frames still flowing", func() bool { n, _ := l.count(); return n >= n1+10 })
	if st := r.Stats(); st.Failures != 1 || st.Reopens != 1 {
		t.Errorf("after recovery: %d failures, %d reopens; want 1 and 1", st.Failures, st.Reopens)
	}
}

// TestGigE_Incomplete runs the fake camera with packet loss: incomplete
// frames must be counted and never returned.
func TestGigE_Incomplete(t *testing.T) {
	newFakeCamera(t, "--gvsp-lost-ratio", "50") // packets per thousand: 5 %
	cfg := gigeConfig()
	// At 5 % packet loss a frame of n packets is complete with p = 0.95^n:
	// keep frames small (160x120 Bayer: 14 packets, p = 0.5).
	cfg.Width, cfg.Height, cfg.FPS = 160, 120, 50
	src := openGigE(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var good int
	var last capture.Frame
	for good < 30 || src.Incomplete() == 0 {
		f, err := src.Read(ctx)
		if err != nil {
			t.Fatalf("read after %d good frames, %d incomplete: %v", good, src.Incomplete(), err)
		}
		good++
		last = f
		f.Close()
	}
	inc := src.Incomplete()
	t.Logf("lost ratio 5%%: %d good frames, %d incomplete dropped (%.0f%%)", good, inc, 100*float64(inc)/float64(good+int(inc)))
	// Every buffer uses a Seq; only complete ones come out of Read.
	if uint64(good)+inc != last.Seq {
		t.Errorf("%d good + %d incomplete != last Seq %d", good, inc, last.Seq)
	}
	src.Close()

	// The Runner carries the count into Stats.
	r := capture.NewRunner(cfg, 4, nil)
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	l := consume(t, r, cfg)
	eventually(t, "incomplete frames in the runner's stats", func() bool {
		n, _ := l.count()
		return n > 0 && r.Stats().Incomplete > 0
	})
	t.Logf("runner stats: %+v", r.Stats())
}
