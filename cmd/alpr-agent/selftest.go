package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
	bolterrors "go.etcd.io/bbolt/errors"
	"gocv.io/x/gocv"

	"github.com/alpr-agent/alpr-agent/audit"
	"github.com/alpr-agent/alpr-agent/boards"
	"github.com/alpr-agent/alpr-agent/capture"
	"github.com/alpr-agent/alpr-agent/capture/capturetest"
	"github.com/alpr-agent/alpr-agent/gnss"
	"github.com/alpr-agent/alpr-agent/hotlist"
	"github.com/alpr-agent/alpr-agent/recognize"
	"github.com/alpr-agent/alpr-agent/spool"
	"github.com/alpr-agent/alpr-agent/uplink"
)

// Check outcomes, as printed.
const (
	statusPass = "PASS"
	statusWarn = "WARN"
	statusFail = "FAIL"
)

// selftestHangGrace is how long past its timeout a check may take to clean
// up before it is reported as hung and left behind (a var for tests).
var selftestHangGrace = 3 * time.Second

const (
	// cameraWindow is how long frames are counted to measure a camera's rate.
	cameraWindow = 2 * time.Second
	// lowDiskBytes is the free space below which the spool check warns.
	lowDiskBytes = 1 << 30
	// clockTolerance is the largest system-vs-GNSS offset that passes.
	clockTolerance = 2 * time.Second
	// certExpiryWarn warns about a client certificate that expires soon.
	certExpiryWarn = 30 * 24 * time.Hour
)

// checkResult is one line of the self-test.
type checkResult struct {
	Name    string   `json:"name"`
	Status  string   `json:"status"`
	Reason  string   `json:"reason"`
	Hint    string   `json:"hint,omitempty"`
	Details []string `json:"details,omitempty"`
	MS      int64    `json:"ms"`
}

// selftestReport is the --json output.
type selftestReport struct {
	Checks []checkResult `json:"checks"`
	Pass   int           `json:"pass"`
	Warn   int           `json:"warn"`
	Fail   int           `json:"fail"`
}

func passf(format string, args ...any) checkResult {
	return checkResult{Status: statusPass, Reason: fmt.Sprintf(format, args...)}
}

func warnf(hint, format string, args ...any) checkResult {
	return checkResult{Status: statusWarn, Reason: fmt.Sprintf(format, args...), Hint: hint}
}

func failf(hint, format string, args ...any) checkResult {
	return checkResult{Status: statusFail, Reason: fmt.Sprintf(format, args...), Hint: hint}
}

// selfCheck is one named check. A check whose after channel is set starts
// once that channel is closed (the clock waits for the GNSS fix).
type selfCheck struct {
	name  string
	run   func(ctx context.Context) checkResult
	after <-chan struct{}
	done  chan struct{}
}

func cmdSelftest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("selftest", stderr)
	cfgPath := fs.String("config", "/etc/alpr-agent/config.yaml", "the agent's config file")
	asJSON := fs.Bool("json", false, "print one JSON object instead of lines")
	timeout := fs.Duration("timeout", 10*time.Second, "time limit of each check (a GNSS cold start may need 2m)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 || *timeout <= 0 {
		fmt.Fprintln(stderr, "alpr-agent selftest: takes --config FILE [--json] [--timeout D] and no arguments")
		return errUsage
	}
	start := time.Now()
	var results []checkResult
	names := []string{"config"}

	t0 := time.Now()
	cfg, cfgErr := LoadConfig(*cfgPath)
	cfgRes := configResult(*cfgPath, cfg, cfgErr)
	cfgRes.Name, cfgRes.MS = "config", time.Since(t0).Milliseconds()

	var checks []*selfCheck
	if cfgErr == nil {
		checks = selftestChecks(cfg)
		for _, c := range checks {
			names = append(names, c.name)
		}
	}
	width := 0
	for _, n := range names {
		width = max(width, len(n))
	}
	emit := func(r checkResult) {
		results = append(results, r)
		if !*asJSON {
			printCheck(stdout, width, r)
		}
	}
	emit(cfgRes)
	if cfgErr == nil {
		runSelfChecks(ctx, checks, *timeout, emit)
	}

	rep := selftestReport{Checks: results}
	for _, r := range results {
		switch r.Status {
		case statusPass:
			rep.Pass++
		case statusWarn:
			rep.Warn++
		default:
			rep.Fail++
		}
	}
	if *asJSON {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if _, err := stdout.Write(append(b, '\n')); err != nil {
			return err
		}
	} else {
		skipped := ""
		if cfgErr != nil {
			skipped = "; other checks skipped until the config loads"
		}
		fmt.Fprintf(stdout, "summary: %d pass, %d warn, %d fail in %.1fs%s\n", rep.Pass, rep.Warn, rep.Fail, time.Since(start).Seconds(), skipped)
	}
	if rep.Fail > 0 {
		return errSilent
	}
	return nil
}

func printCheck(w io.Writer, width int, r checkResult) {
	fmt.Fprintf(w, "%s  %-*s  %s\n", r.Status, width, r.Name, r.Reason)
	for _, d := range r.Details {
		fmt.Fprintf(w, "      - %s\n", d)
	}
	if r.Hint != "" && r.Status != statusPass {
		fmt.Fprintf(w, "      hint: %s\n", r.Hint)
	}
}

// configResult reports LoadConfig: on failure every problem it found, each
// naming its key.
func configResult(path string, cfg Config, err error) checkResult {
	if err == nil {
		return passf("%s: device %s, %d camera(s), broker %s", path, cfg.Device, len(cfg.Cameras), cfg.Uplink.Broker)
	}
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
		return failf("give the agent's config file with --config (the package installs /etc/alpr-agent/config.yaml)", "%v", err)
	}
	prefix := "config " + path + ": "
	var problems []string
	for _, line := range strings.Split(err.Error(), "\n") {
		line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), prefix))
		if line == "" || line == "unmarshal errors:" {
			continue
		}
		problems = append(problems, line)
	}
	hint := "fix the keys named above in " + path + " (README.md lists every key)"
	switch len(problems) {
	case 0:
		return failf(hint, "%v", err)
	case 1:
		return failf(hint, "%s: %s", path, problems[0])
	}
	r := failf(hint, "%s: %d problems", path, len(problems))
	r.Details = problems
	return r
}

// selftestChecks lists the checks of a loaded config, in print order.
func selftestChecks(cfg Config) []*selfCheck {
	var checks []*selfCheck
	add := func(name string, after <-chan struct{}, run func(context.Context) checkResult) *selfCheck {
		c := &selfCheck{name: name, run: run, after: after, done: make(chan struct{})}
		checks = append(checks, c)
		return c
	}
	for _, cam := range cfg.Cameras {
		add("camera "+cam.Name, nil, func(ctx context.Context) checkResult { return checkCamera(ctx, cam) })
	}
	add("models", nil, func(context.Context) checkResult { return checkModels(cfg.Recognize) })
	var gnssOut atomic.Pointer[gnssOutcome]
	g := add("gnss", nil, func(ctx context.Context) checkResult {
		r, out := checkGNSS(ctx, cfg.GNSS)
		gnssOut.Store(&out)
		return r
	})
	add("broker", nil, func(ctx context.Context) checkResult { return checkBroker(ctx, cfg) })
	add("spool", nil, func(context.Context) checkResult { return checkSpool(cfg.Spool, cfg.Retention, time.Now()) })
	add("privacy", nil, func(context.Context) checkResult { return checkPrivacy(cfg, time.Now()) })
	add("clock", g.done, func(context.Context) checkResult { return checkClock(gnssOut.Load(), cfg.GNSS.Port != "", time.Now()) })
	add("board", nil, func(ctx context.Context) checkResult { return checkBoard(ctx, cfg.Board) })
	return checks
}

// runSelfChecks runs every check at once, each under its own timeout, and
// emits the results in list order. A check that does not return by its
// timeout plus a grace is reported as hung and left behind, so one stuck
// driver call never holds up the others or the exit.
func runSelfChecks(ctx context.Context, checks []*selfCheck, timeout time.Duration, emit func(checkResult)) {
	out := make([]chan checkResult, len(checks))
	for i, c := range checks {
		out[i] = make(chan checkResult, 1)
		go func() {
			if c.after != nil {
				select {
				case <-c.after:
				case <-ctx.Done():
				}
			}
			r := runSelfCheck(ctx, c, timeout)
			close(c.done)
			out[i] <- r
		}()
	}
	for _, ch := range out {
		emit(<-ch)
	}
}

func runSelfCheck(ctx context.Context, c *selfCheck, timeout time.Duration) checkResult {
	t0 := time.Now()
	cctx, cancel := context.WithTimeout(ctx, timeout)
	res := make(chan checkResult, 1)
	go func() {
		defer cancel()
		defer func() {
			if p := recover(); p != nil {
				res <- failf("this is a bug in the agent: please report it with this output", "check panicked: %v", p)
			}
		}()
		res <- c.run(cctx)
	}()
	hang := time.NewTimer(timeout + selftestHangGrace)
	defer hang.Stop()
	var r checkResult
	select {
	case r = <-res:
	case <-hang.C:
		r = failf("a driver call is stuck; check the device's cabling and the kernel log (dmesg), then rerun",
			"did not finish within %v", timeout)
	}
	r.Name, r.MS = c.name, time.Since(t0).Milliseconds()
	// One line per check: an error that lists several problems (joined
	// errors) keeps its first line as the reason, the rest as details.
	if lines := strings.Split(strings.TrimSpace(r.Reason), "\n"); len(lines) > 1 {
		r.Reason = lines[0]
		r.Details = append(lines[1:len(lines):len(lines)], r.Details...)
	}
	return r
}

// --- cameras ---------------------------------------------------------------

func checkCamera(ctx context.Context, cam CameraConfig) checkResult {
	cc := cam.captureConfig()
	src, err := capture.Open(ctx, cc)
	if err != nil {
		return cameraOpenFailure(ctx, cam, err)
	}
	defer src.Close()
	var details []string
	if w, ok := src.(interface{ Warnings() []error }); ok {
		for _, e := range w.Warnings() {
			details = append(details, "setting not applied: "+e.Error())
		}
	}
	want := cam.FPS
	if want == 0 {
		if f, ok := src.(interface{ FPS() float64 }); ok {
			want = f.FPS()
		}
	}
	// Count frames over a window that starts at the first frame, so a slow
	// open does not lower the measured rate.
	maxFrames := 200
	if want > 0 {
		maxFrames = max(int(math.Ceil(want*cameraWindow.Seconds()))+1, 3)
	}
	var first, last time.Time
	var n, bad int
	var size string
	var readErr error
	for n < maxFrames {
		if !first.IsZero() && time.Since(first) >= cameraWindow {
			break
		}
		f, err := src.Read(ctx)
		if errors.Is(err, capture.ErrBadFrame) {
			bad++
			continue
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				readErr = err
			}
			break
		}
		now := time.Now()
		if first.IsZero() {
			first = now
			size = fmt.Sprintf("%dx%d", f.Img.Cols(), f.Img.Rows())
		}
		last = now
		n++
		f.Close()
	}
	if bad > 0 {
		details = append(details, fmt.Sprintf("%d frame(s) did not decode", bad))
	}
	if n == 0 {
		if readErr != nil && ctx.Err() == nil {
			r := failf(cameraHint(cam), "%s opened but reading failed: %v", cam.Path, readErr)
			r.Details = details
			return r
		}
		r := failf(cameraHint(cam), "%s opened but no frame arrived", cam.Path)
		if ctx.Err() != nil {
			r.Reason += " within the timeout"
		}
		r.Details = details
		return r
	}
	rate := 0.0
	if n > 1 {
		rate = float64(n-1) / last.Sub(first).Seconds()
	}
	got := fmt.Sprintf("%d frames %s at %.1f fps", n, size, rate)
	if n == 1 {
		got = fmt.Sprintf("1 frame %s", size)
	}
	var r checkResult
	switch {
	case readErr != nil:
		r = warnf(cameraHint(cam), "%s, then reading failed: %v", got, readErr)
	case want > 0 && n > 1 && rate < want/2:
		r = warnf("a long exposure caps the frame rate; a USB camera needs its own controller's bandwidth; an IP camera needs a clean link",
			"%s, below half of the expected %.1f fps", got, want)
	case len(details) > 0:
		r = warnf("the camera runs without those settings: check cameras[].pixel_format, exposure_us and gain against what the camera supports", "%s", got)
	case want > 0:
		r = passf("%s (expected %.1f)", got, want)
	default:
		r = passf("%s", got)
	}
	r.Details = details
	return r
}

func cameraOpenFailure(ctx context.Context, cam CameraConfig, err error) checkResult {
	hint := cameraHint(cam)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return failf(hint, "%s %s is missing", cam.Kind, cam.Path)
	case errors.Is(err, fs.ErrPermission):
		return failf("the agent's user needs the video group (or read access to the file)", "%s %s: permission denied", cam.Kind, cam.Path)
	case errors.Is(err, capture.ErrNoFrames):
		return failf(hint, "%s opens but yields no frame: %v", cam.Path, err)
	case ctx.Err() != nil:
		return failf(hint, "%s did not open within the timeout", cam.Path)
	}
	return failf(hint, "open %s: %v", cam.Path, err)
}

func cameraHint(cam CameraConfig) string {
	switch cam.Kind {
	case capture.KindV4L2:
		return "is the camera plugged in and is the path right? `v4l2-ctl --list-devices`; is another program using it (a running agent)?"
	case capture.KindGigE:
		return "is the camera powered and on this subnet? `arv-tool-0.8` lists the cameras Aravis sees"
	case capture.KindRTSP, capture.KindGStreamer:
		return "check the URL or pipeline with gst-launch-1.0, the camera's credentials and the network"
	default:
		return "check cameras[].path in the config"
	}
}

// --- models ----------------------------------------------------------------

// selftestPlate renders a frame of the project's synthetic scene in which
// the first car's plate is fully visible and sharp, and returns it with the
// plate's text.
func selftestPlate() (gocv.Mat, string, error) {
	spec := capturetest.DefaultClip()
	spec.Cars = spec.Cars[:1]
	spec.BlurredFraction, spec.Noise, spec.Jitter = 0, 0, 0
	truth := spec.GroundTruth().Plates[0]
	if truth.FirstFrame < 0 {
		return gocv.Mat{}, "", errors.New("render test plate: the plate is never in view")
	}
	img, err := spec.FrameMat((truth.FirstFrame + truth.LastFrame) / 2)
	return img, truth.Plate, err
}

func checkModels(rc RecognizeConfig) checkResult {
	r, err := openRecognizer(rc)
	if err != nil {
		hint := "check recognize.model_dir and recognize.runtime_lib; on a device reinstall the alpr-agent package"
		if errors.Is(err, recognize.ErrMissingFile) {
			hint = "a development checkout fetches them with `make setup`; on a device reinstall the alpr-agent package (it ships the models and ONNX Runtime)"
		}
		return failf(hint, "load models: %v", err)
	}
	defer r.Close()
	img, want, err := selftestPlate()
	if err != nil {
		return failf("this is a bug in the agent: please report it", "%v", err)
	}
	defer img.Close()
	plates, dt, err := recognizeTimed(r, img)
	if err != nil {
		return failf("the model files may be corrupt or of another version: `make setup` or reinstall the package", "read test plate: %v", err)
	}
	var got []string
	for _, p := range plates {
		if recognize.Match(p.Text, want) {
			return passf("read the test plate %s (confidence %.2f) in %.0f ms, models in %s", p.Text, p.Confidence, round1(dt), rc.ModelDir)
		}
		got = append(got, p.Text)
	}
	if len(got) == 0 {
		got = []string{"nothing"}
	}
	return failf("the model files may be corrupt or of another version: `make setup` or reinstall the package",
		"test plate %s read as %s", want, strings.Join(got, ", "))
}

// --- GNSS ------------------------------------------------------------------

// gnssOutcome is what the clock check needs from the GNSS check.
type gnssOutcome struct {
	fix    bool
	offset time.Duration // system time minus GNSS time, when fix
}

func checkGNSS(ctx context.Context, g GNSSConfig) (checkResult, gnssOutcome) {
	var out gnssOutcome
	if g.Port == "" {
		return warnf("set gnss.port to the receiver's serial device (/dev/serial/by-id/... is stable across reboots)",
			"no receiver configured: reads carry position null and system time"), out
	}
	if _, err := os.Stat(g.Port); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return failf("is the receiver plugged in? look in /dev/serial/by-id/ and at `dmesg | tail` after plugging it",
				"port %s is missing", g.Port), out
		}
		return failf("check gnss.port", "port %s: %v", g.Port, err), out
	}
	deadline, _ := ctx.Deadline()
	budget := time.Until(deadline)
	gc := gnss.DefaultConfig()
	gc.Port, gc.StaleAfter, gc.Baud = g.Port, g.StaleAfter, g.Baud
	if g.Baud == 0 {
		gc.Baud = gnss.BaudAuto
		// Leave time for a fix after trying every rate.
		gc.DetectWindow = min(max(budget/8, 500*time.Millisecond), 2*time.Second)
	}
	rcv := gnss.New(gc, slog.New(slog.DiscardHandler))
	if err := rcv.Start(ctx); err != nil {
		return failf("check gnss.port and gnss.baud", "start receiver: %v", err), out
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = rcv.Close(cctx)
	}()
	t0 := time.Now()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var st gnss.Status
	for {
		st = rcv.Status()
		if st.HasFix || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
	baud := fmt.Sprintf("%d baud", st.Baud)
	if st.AutoBaud {
		baud += ", detected"
	}
	if st.HasFix {
		now := time.Now()
		if wt, ok := rcv.History().WallTime(now); ok {
			out = gnssOutcome{fix: true, offset: now.Round(0).Sub(wt)}
		}
		f := st.LastFix
		return passf("fix %dD, %d satellites, HDOP %.1f at %.5f,%.5f in %.1fs (%s)",
			f.Mode, f.Sats, f.HDOP, f.Lat, f.Lon, time.Since(t0).Seconds(), baud), out
	}
	return gnssNoFix(g, st, budget), out
}

// gnssNoFix says as precisely as the receiver's counters allow why no fix
// came in time.
func gnssNoFix(g GNSSConfig, st gnss.Status, budget time.Duration) checkResult {
	in := budget.Round(100 * time.Millisecond)
	switch {
	case st.Bytes == 0 && st.OpenErrors > 0 && st.Opens == 0 && !st.PortOpen:
		switch e := st.LastError; {
		case strings.Contains(e, "busy"):
			return warnf("stop the agent (systemctl stop alpr-agent) or gpsd to test the receiver",
				"port %s is busy: another program (the running agent? gpsd?) reads it", g.Port)
		case strings.Contains(e, "permission denied"):
			return failf("the agent's user needs the dialout group", "cannot open %s: permission denied", g.Port)
		default:
			return failf("check gnss.port: is it the receiver's serial device?", "cannot open %s: %s", g.Port, e)
		}
	case st.Bytes == 0:
		return failf("check the receiver's power and its TX wire; a USB receiver needs a moment after plug-in",
			"port %s opens but no data arrived in %v", g.Port, in)
	case st.Sentences == 0:
		tried := fmt.Sprintf("at %d baud", g.Baud)
		hint := "wrong gnss.baud? set it to 0 to detect the rate, or to the receiver's rate"
		if g.Baud == 0 {
			tried = "at any of " + joinInts(gnss.AutoBauds) + " baud"
			hint = "set gnss.baud to the receiver's rate if it is not one of those, and make sure its NMEA output is enabled (not binary only)"
		}
		return failf(hint, "%d bytes but no valid NMEA sentence %s (wrong baud?)", st.Bytes, tried)
	}
	sats := ""
	if st.LastFix.Sats > 0 {
		sats = fmt.Sprintf(", %d satellites at the last fix", st.LastFix.Sats)
	}
	return warnf("give the antenna a clear view of the sky; a cold start can take minutes: rerun with --timeout 2m",
		"%d NMEA sentences at %d baud but no fix yet in %v%s", st.Sentences, st.Baud, in, sats)
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ", ")
}

// --- clock -----------------------------------------------------------------

func checkClock(g *gnssOutcome, configured bool, now time.Time) checkResult {
	const hint = "reads carry GNSS time while there is a fix; enable NTP (systemd-timesyncd) or fit an RTC so the rest is right too"
	if g == nil || !g.fix {
		why := "no GNSS fix"
		if !configured {
			why = "no GNSS receiver configured"
		}
		if now.Year() < 2025 {
			return warnf(hint, "cannot check against GNSS (%s), and the system clock says %s: no RTC and no NTP?", why, now.UTC().Format(time.DateOnly))
		}
		return warnf("get a GNSS fix (see the gnss check), then rerun", "cannot check: %s", why)
	}
	off := g.offset
	abs := off
	if abs < 0 {
		abs = -abs
	}
	dir := "ahead of"
	if off < 0 {
		dir = "behind"
	}
	if abs > clockTolerance {
		return warnf(hint, "system clock is %s %s GNSS time", humanDuration(abs), dir)
	}
	return passf("system clock within %s of GNSS time", humanDuration(abs))
}

// humanDuration is d as a technician reads it: days past two days.
func humanDuration(d time.Duration) string {
	if d >= 48*time.Hour {
		days := d / (24 * time.Hour)
		return fmt.Sprintf("%d days %v", days, (d - days*24*time.Hour).Round(time.Hour))
	}
	return roundDuration(d).String()
}

func roundDuration(d time.Duration) time.Duration {
	switch {
	case d >= time.Hour:
		return d.Round(time.Second)
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}

// --- broker ----------------------------------------------------------------

func checkBroker(ctx context.Context, cfg Config) checkResult {
	uc := cfg.Uplink
	u, err := url.Parse(uc.Broker)
	if err != nil || u.Hostname() == "" {
		return failf("uplink.broker looks like ssl://broker.example.com:8883", "broker URL %q: cannot parse", uc.Broker)
	}
	host, port := u.Hostname(), u.Port()
	secure := u.Scheme != "tcp" && u.Scheme != "mqtt"
	if port == "" {
		port = "1883"
		if secure {
			port = "8883"
		}
	}
	addr := net.JoinHostPort(host, port)
	tlsCfg, err := uplink.TLSConfig(uc.Broker, uc.CAFile, uc.CertFile, uc.KeyFile)
	if err != nil {
		return failf("uplink.ca_file, cert_file and key_file must be PEM files the agent's user can read", "%v", err)
	}
	var certNote string
	if tlsCfg != nil && len(tlsCfg.Certificates) > 0 && tlsCfg.Certificates[0].Leaf != nil {
		leaf := tlsCfg.Certificates[0].Leaf
		now := time.Now()
		switch {
		case now.After(leaf.NotAfter):
			return failf("install a renewed device certificate (uplink.cert_file, key_file)",
				"client certificate %s expired on %s", uc.CertFile, leaf.NotAfter.UTC().Format(time.DateOnly))
		case now.Before(leaf.NotBefore):
			return failf("is the system clock right? (see the clock check)",
				"client certificate %s is not valid before %s", uc.CertFile, leaf.NotBefore.UTC().Format(time.RFC3339))
		case leaf.NotAfter.Sub(now) < certExpiryWarn:
			certNote = fmt.Sprintf("client certificate expires on %s", leaf.NotAfter.UTC().Format(time.DateOnly))
		}
	}

	// Network first, step by step, so the reason is precise.
	if net.ParseIP(host) == nil {
		if _, err := net.DefaultResolver.LookupHost(ctx, host); err != nil {
			return failf("check the host name in uplink.broker and the unit's network and DNS (cellular APN)",
				"cannot resolve %s: %v", host, err)
		}
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return dialFailure(ctx, addr, err)
	}
	if tlsCfg != nil {
		tc := tls.Client(conn, tlsCfg.Clone())
		err := tc.HandshakeContext(ctx)
		if err == nil && tc.ConnectionState().Version >= tls.VersionTLS13 {
			err = awaitCertVerdict(tc)
		}
		tc.Close()
		if err != nil {
			return tlsFailure(addr, uc, err)
		}
	} else {
		conn.Close()
	}

	// Then MQTT: the broker's verdict on the client certificate (TLS 1.3
	// sends it after the handshake) and on the credentials. The client ID
	// is not the device's, so the running agent's session is not kicked.
	deadline, _ := ctx.Deadline()
	opts := mqtt.NewClientOptions().AddBroker(uc.Broker).
		SetClientID(cfg.Device + "-selftest").
		SetUsername(uc.Username).SetPassword(uc.Password).
		SetCleanSession(true).SetAutoReconnect(false).SetConnectRetry(false).
		SetConnectTimeout(max(time.Until(deadline), time.Second))
	if tlsCfg != nil {
		opts.SetTLSConfig(tlsCfg)
	}
	c := mqtt.NewClient(opts)
	tok := c.Connect()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		return failf("the broker accepted TCP and TLS but did not answer CONNECT: is this port an MQTT listener?",
			"no CONNACK from %s within the timeout", addr)
	}
	if err := tok.Error(); err != nil {
		return mqttFailure(addr, uc, err)
	}
	c.Disconnect(100)
	how := "plaintext"
	if tlsCfg != nil {
		how = "TLS"
		if len(tlsCfg.Certificates) > 0 {
			how += ", client certificate accepted"
		}
	}
	if certNote != "" {
		return warnf("install a renewed device certificate before it expires", "connected to %s (%s); %s", addr, how, certNote)
	}
	if tlsCfg == nil {
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			return warnf("use ssl:// with uplink.ca_file, cert_file and key_file; uplink.insecure is for the loopback demo",
				"connected to %s, but in plaintext: reads cross the network unencrypted", addr)
		}
		how += ", loopback"
	}
	return passf("connected to %s as %s-selftest (%s)", addr, cfg.Device, how)
}

func dialFailure(ctx context.Context, addr string, err error) checkResult {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return failf("nothing listens there: check the port in uplink.broker and that the broker runs",
			"connection to %s refused", addr)
	case ctx.Err() != nil || (errors.As(err, &ne) && ne.Timeout()):
		return failf("a firewall or the network drops the packets: check the unit's network and the broker's firewall",
			"no answer from %s within the timeout", addr)
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH):
		return failf("the unit has no route there: check its network link (cable, Wi-Fi, cellular)",
			"%s unreachable: %v", addr, err)
	}
	return failf("check the unit's network", "connect to %s: %v", addr, err)
}

func tlsFailure(addr string, uc UplinkConfig, err error) checkResult {
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	var re tls.RecordHeaderError
	ca := uc.CAFile
	if ca == "" {
		ca = "the system roots"
	}
	switch {
	case errors.As(err, &ua):
		return failf("uplink.ca_file must hold the CA that signed the broker's certificate",
			"TLS: broker certificate of %s is signed by an unknown CA (not in %s)", addr, ca)
	case errors.As(err, &hn):
		return failf("put the name the broker's certificate carries in uplink.broker, or reissue the broker certificate",
			"TLS: broker certificate of %s is not valid for %s (%v)", addr, hn.Host, hn)
	case errors.As(err, &ci) && ci.Reason == x509.Expired:
		return failf("renew the broker's certificate, or fix the system clock (see the clock check)",
			"TLS: broker certificate of %s expired or not yet valid (system time %s)", addr, time.Now().UTC().Format(time.RFC3339))
	case errors.As(err, &re):
		return failf("the port speaks plaintext MQTT: use tcp:// only for the loopback demo, or the broker's TLS port (8883)",
			"TLS: %s does not speak TLS", addr)
	case strings.Contains(err.Error(), "remote error") && uc.CertFile == "":
		return failf("install the device certificate and key and set uplink.cert_file and uplink.key_file",
			"TLS: broker %s requires a client certificate and none is configured (%s)", addr, remoteError(err))
	case strings.Contains(err.Error(), "remote error"):
		return failf("the broker refuses this device's certificate (uplink.cert_file): is it signed by the CA the broker trusts, and not expired?",
			"TLS: broker %s rejected the client certificate %s (%s)", addr, uc.CertFile, remoteError(err))
	}
	return failf("check uplink.ca_file, cert_file and key_file", "TLS handshake with %s: %v", addr, err)
}

func mqttFailure(addr string, uc UplinkConfig, err error) checkResult {
	switch {
	case errors.Is(err, packets.ErrorRefusedBadUsernameOrPassword):
		return failf("check uplink.username and uplink.password", "broker %s refused the credentials: bad user name or password", addr)
	case errors.Is(err, packets.ErrorRefusedNotAuthorised):
		return failf("the broker does not allow this device: check its user, certificate and ACL on the broker",
			"broker %s: not authorised", addr)
	case errors.Is(err, packets.ErrorRefusedIDRejected):
		return failf("the device ID is the MQTT client ID: check the broker's client ID rules", "broker %s rejected the client ID", addr)
	case strings.Contains(err.Error(), "certificate"), strings.Contains(err.Error(), "remote error"):
		return failf("the broker refuses this device's certificate (uplink.cert_file): is it signed by the CA the broker trusts, and not expired?",
			"broker %s rejected the client certificate: %s", addr, remoteError(err))
	case errors.Is(err, io.EOF) || strings.Contains(err.Error(), "EOF") || strings.Contains(err.Error(), "reset by peer"):
		hint := "the broker closed the connection: see its log (ACL, listener settings, a missing client certificate)"
		if uc.CertFile == "" {
			hint = "the broker closed the connection: does it require a client certificate (uplink.cert_file, key_file)?"
		}
		return failf(hint, "broker %s closed the connection during CONNECT", addr)
	}
	return failf("see the broker's log", "MQTT connect to %s: %v", addr, err)
}

// certVerdictWait is how long, after a TLS 1.3 handshake, the check waits
// for the broker to reject the client certificate: TLS 1.3 servers verify
// it after the client's Finished and send their alert on the next record.
const certVerdictWait = 500 * time.Millisecond

// awaitCertVerdict reads from a fresh TLS 1.3 connection: an MQTT broker
// sends nothing before CONNECT, so a timeout means the certificate was
// accepted and an alert means it was not.
func awaitCertVerdict(tc *tls.Conn) error {
	if err := tc.SetReadDeadline(time.Now().Add(certVerdictWait)); err != nil {
		return err
	}
	var b [1]byte
	_, err := tc.Read(b[:])
	var ne net.Error
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		return nil
	}
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("broker closed the connection after the handshake (remote error: client certificate refused?): %w", err)
	}
	return err
}

// remoteError is the TLS alert the peer sent ("remote error: tls: bad
// certificate"), without the layers of wrapping around it.
func remoteError(err error) string {
	s := err.Error()
	if i := strings.Index(s, "remote error: "); i >= 0 {
		return s[i:]
	}
	return s
}

// --- spool -----------------------------------------------------------------

func checkSpool(sc SpoolConfig, rc RetentionConfig, now time.Time) checkResult {
	dir := filepath.Dir(sc.Path)
	st, err := os.Stat(dir)
	if err != nil || !st.IsDir() {
		return failf("create the folder (the package makes /var/lib/alpr-agent) or fix spool.path", "spool folder %s does not exist", dir)
	}
	probe, err := os.CreateTemp(dir, ".selftest-*")
	if err != nil {
		return failf("the agent's user must own the spool folder", "spool folder %s is not writable: %v", dir, errors.Unwrap(err))
	}
	probe.Close()
	os.Remove(probe.Name())

	var fsst syscall.Statfs_t
	if err := syscall.Statfs(dir, &fsst); err != nil {
		return failf("check the filesystem of spool.path", "statfs %s: %v", dir, err)
	}
	free := int64(fsst.Bavail) * int64(fsst.Bsize)
	var warns []string
	if free < lowDiskBytes {
		warns = append(warns, fmt.Sprintf("only %s free", humanBytes(free)))
	} else if sc.MaxBytes > 0 && free < sc.MaxBytes {
		warns = append(warns, fmt.Sprintf("%s free is less than spool.max_bytes %s", humanBytes(free), humanBytes(sc.MaxBytes)))
	}
	parts := []string{fmt.Sprintf("%s free", humanBytes(free))}

	if _, err := os.Stat(sc.Path); errors.Is(err, fs.ErrNotExist) {
		parts = append(parts, "no spool yet (the agent creates it)")
		return spoolResult(parts, warns)
	}
	// Retention is not applied here (MaxAge 0): the self-test reports what
	// is stored, it does not delete. A short lock timeout: the running
	// agent holds the file.
	opt := spool.Options{Timeout: 300 * time.Millisecond, NoRecover: true, ExpireEvery: -1}
	if sc.KeyFile != "" {
		if opt.Key, err = spool.LoadKeyFile(sc.KeyFile); err != nil {
			return failf("provision the key file (32 random bytes or 64 hex characters, mode 0600, owned by the agent's user)", "spool.key_file: %v", err)
		}
		parts = append(parts, "encrypted at rest")
	}
	sp, err := spool.Open(sc.Path, opt)
	if errors.Is(err, bolterrors.ErrTimeout) {
		parts = append(parts, "spool in use by a running agent (its depth is on `alpr-agent diag`)")
		return spoolResult(parts, warns)
	}
	if errors.Is(err, spool.ErrKey) {
		return failf("spool.key_file must be the key this spool was written with (or remove the key for an unencrypted spool)", "%v", err)
	}
	if errors.Is(err, spool.ErrCorruptFile) {
		return failf("nothing to do: at start the agent moves the damaged file aside (kept for recovery) and starts a fresh spool", "%v", err)
	}
	if err != nil {
		return failf("move the file aside and let the agent start a new spool (the reads in it are lost)", "%v", err)
	}
	ss := sp.Stats()
	sp.Close()
	q := fmt.Sprintf("%d record(s) queued", ss.Records)
	if !ss.Oldest.IsZero() {
		age := now.Sub(ss.Oldest)
		q += fmt.Sprintf(", oldest %v old", roundDuration(age).Round(time.Second))
		if age > rc.MaxAge/2 {
			warns = append(warns, fmt.Sprintf("oldest record is %v old, over half of retention.max_age %v", roundDuration(age).Round(time.Second), rc.MaxAge))
		}
	}
	parts = append(parts, q)
	if ss.Full {
		warns = append(warns, "the spool is full: new reads are refused")
	}
	return spoolResult(parts, warns)
}

func spoolResult(parts, warns []string) checkResult {
	if len(warns) > 0 {
		return warnf("reads are not leaving the unit fast enough, or the disk is small: check the broker check, free space, spool.max_bytes",
			"%s (%s)", strings.Join(warns, "; "), strings.Join(parts, ", "))
	}
	return passf("%s", strings.Join(parts, ", "))
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// --- board -----------------------------------------------------------------

func checkBoard(ctx context.Context, bcfg BoardConfig) checkResult {
	bc := bcfg.boardConfig()
	b := boards.New(bc, slog.New(slog.DiscardHandler))
	if err := b.Start(ctx); err != nil {
		return failf("check the board section of the config", "start board %s: %v", bc.Profile, err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = b.Close(cctx)
	}()
	var loaded, absent, broken []string
	for _, p := range b.Peripherals() {
		switch p.State {
		case boards.Loaded:
			loaded = append(loaded, p.Name)
		case boards.Absent:
			absent = append(absent, p.Name)
		default:
			broken = append(broken, fmt.Sprintf("%s: %s", p.Name, p.Reason))
		}
	}
	var hottest *boards.Temperature
	for _, t := range boards.ReadTemperatures(bc.SysfsRoot) {
		if hottest == nil || t.Celsius > hottest.Celsius {
			hottest = &t
		}
	}
	parts := []string{"profile " + bc.Profile}
	if len(loaded) > 0 {
		parts = append(parts, "loaded "+strings.Join(loaded, ", "))
	}
	if len(absent) > 0 {
		parts = append(parts, "absent "+strings.Join(absent, ", "))
	}
	temp := "no temperature sensor"
	if hottest != nil {
		temp = fmt.Sprintf("%.1f°C (%s)", hottest.Celsius, hottest.Zone)
	}
	parts = append(parts, temp)
	var r checkResult
	switch {
	case len(broken) > 0:
		r = warnf("check the wiring and board.pins of the broken parts; the agent runs on without them",
			"%d peripheral(s) broken; %s", len(broken), strings.Join(parts, "; "))
		r.Details = broken
	case hottest != nil && hottest.Celsius >= bc.ThrottleAboveC:
		r = warnf("the unit runs hot: frames will be skipped; check its ventilation and sun shield",
			"%s is above the throttle limit %.0f°C; %s", temp, bc.ThrottleAboveC, strings.Join(parts, "; "))
	default:
		r = passf("%s", strings.Join(parts, "; "))
	}
	return r
}

// checkPrivacy: what the unit enforces on itself. The hotlist key and the
// list in use (it matches nothing when there is none), and the audit log's
// chain. It reads, never writes: the running agent owns both files.
func checkPrivacy(cfg Config, now time.Time) checkResult {
	var parts, warns []string
	mode := "all reads"
	if cfg.Privacy.HitsOnly {
		mode = "hits only"
	}
	parts = append(parts, mode)
	if cfg.Spool.KeyFile == "" {
		warns = append(warns, "spool not encrypted at rest (spool.key_file)")
	}
	if cfg.Privacy.FullFrames {
		warns = append(warns, "full frames are stored and sent (privacy.full_frames)")
	}
	if cfg.Hotlist.PublicKeyFile == "" {
		parts = append(parts, "no hotlist (hotlist.public_key_file unset)")
	} else {
		keys, err := hotlist.ReadPublicKeys(cfg.Hotlist.PublicKeyFile)
		if err != nil {
			return failf("provision the central side's public key (alpr-agent hotlist keygen makes the pair)", "hotlist.public_key_file: %v", err)
		}
		path := statePath(cfg, cfg.Hotlist.Path, "hotlist.json")
		switch msg, err := os.ReadFile(path); {
		case errors.Is(err, os.ErrNotExist):
			warns = append(warns, "no hotlist received yet: nothing can match until central publishes one")
		case err != nil:
			return failf("the agent's user must be able to read its state folder", "read %s: %v", path, err)
		default:
			_, keyID, doc, err := hotlist.Inspect(msg, keys, cfg.Hotlist.MaxBytes)
			if err != nil {
				return failf("the agent refuses it too: central must publish a list signed with a key in hotlist.public_key_file", "hotlist %s: %v", path, err)
			}
			d, err := hotlist.ParseDocument(doc)
			if err != nil {
				return failf("central must publish a valid list", "hotlist %s: %v", path, err)
			}
			parts = append(parts, fmt.Sprintf("hotlist %q #%d, %d entries, key %s, issued %v ago", d.Name, d.Seq, len(d.Entries), keyID, roundDuration(now.Sub(d.Issued)).Round(time.Minute)))
		}
	}
	apath := statePath(cfg, cfg.Audit.Path, "audit.log")
	var key []byte
	if cfg.Audit.HMACKeyFile != "" {
		k, err := spool.LoadKeyFile(cfg.Audit.HMACKeyFile)
		if err != nil {
			return failf("provision the audit key (32 random bytes, mode 0600)", "audit.hmac_key_file: %v", err)
		}
		key = k
	}
	switch rep, err := audit.VerifyKey(apath, key); {
	case errors.Is(err, os.ErrNotExist):
		parts = append(parts, "no audit log yet (the agent creates it)")
	case err != nil && rep.TruncatedTail:
		warns = append(warns, fmt.Sprintf("audit log's last line is cut short (power cut?): the agent records it at its next start (%d entries intact)", rep.Entries))
	case err != nil:
		return failf("keep the file as evidence and report it: the agent will not append to a tampered log", "audit log %s: %v", apath, err)
	default:
		parts = append(parts, fmt.Sprintf("audit log intact, %d entries", rep.Entries))
	}
	if len(warns) > 0 {
		return warnf("review the privacy settings in the config", "%s (%s)", strings.Join(warns, "; "), strings.Join(parts, ", "))
	}
	return passf("%s", strings.Join(parts, ", "))
}
