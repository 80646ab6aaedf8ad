package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image/jpeg"
	"image/png"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alpr-agent/alpr-agent/boards"
	"github.com/alpr-agent/alpr-agent/capture"
	"github.com/alpr-agent/alpr-agent/capture/capturetest"
	"github.com/alpr-agent/alpr-agent/uplink"
	"github.com/alpr-agent/alpr-agent/uplink/mqtttest"
)

// freeAddr returns a loopback address nothing listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func httpGet(t *testing.T, url, user, pass string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("get %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s: %v", url, err)
	}
	return resp, body
}

// TestDiag_RunningAgent runs the agent on a synthetic clip with the diag
// listener on, waits for a read, then checks what a technician and a
// scraper see: the page (in a real headless Chromium), /status.json,
// /metrics, the thumbnail and crop, and `alpr-agent diag`.
func TestDiag_RunningAgent(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the recognizer on a clip")
	}
	needModels(t)
	start := time.Now()
	work := t.TempDir()
	clip := filepath.Join(work, "clip.avi")
	spec := capturetest.DefaultClip()
	spec.Duration, spec.Cars = 4*time.Second, spec.Cars[:1] // YG9X2G only
	if err := capturetest.WriteClip(clip, spec); err != nil {
		t.Fatal(err)
	}
	broker := mqtttest.Start(t)
	addr := freeAddr(t)
	cfg := demoConfig(broker.URL(), clip, "", work)
	cfg.Device = "diag-test-1"
	cfg.Cameras[0].Loop = true
	cfg.Tracker.MaxGap, cfg.Tracker.MaxDuration = time.Second, 3*time.Second
	cfg.Diag.Listen = addr
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	a := NewAgent(cfg, silentLogger())
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, RunOptions{DrainTimeout: time.Second}) }()
	var once sync.Once
	stopAgent := func() {
		once.Do(func() {
			stop()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("run: %v", err)
				}
			case <-time.After(time.Minute):
				t.Error("agent did not stop")
			}
		})
	}
	defer stopAgent()

	base := "http://" + addr
	var st diagStatus
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if time.Now().After(deadline) {
			t.Fatalf("no read on /status.json within 2 minutes: %+v", st)
		}
		select {
		case err := <-done:
			t.Fatalf("agent stopped early: %v", err)
		case <-time.After(200 * time.Millisecond):
		}
		resp, err := http.Get(base + "/status.json")
		if err != nil {
			continue // not listening yet
		}
		err = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("decode status.json: %v", err)
		}
		if len(st.RecentReads) > 0 {
			break
		}
	}
	t.Logf("first read after %v: %+v", time.Since(start).Round(time.Millisecond), st.RecentReads[0])
	plate := st.RecentReads[0].Plate

	t.Run("StatusJSON", func(t *testing.T) {
		if st.V != 1 || st.Device != "diag-test-1" || st.Version != version {
			t.Errorf("status head = v%d %q %q", st.V, st.Device, st.Version)
		}
		if len(st.Cameras) != 1 || st.Cameras[0].Camera != "front" || st.Cameras[0].FramesIn == 0 || st.Cameras[0].LastFrameAgeMS < 0 {
			t.Errorf("cameras = %+v, want front with frames", st.Cameras)
		}
		if st.Reads < 1 || st.Spool.Records+int(st.Uplink.Acked) < 1 {
			t.Errorf("reads %d, spool %+v, uplink %+v: the read is neither spooled nor delivered", st.Reads, st.Spool, st.Uplink)
		}
		if !st.Uplink.Connected || st.GNSS.Enabled {
			t.Errorf("uplink %+v gnss %+v, want connected and no receiver", st.Uplink, st.GNSS)
		}
		r := st.RecentReads[0]
		if r.ID == "" || r.Camera != "front" || r.Plate == "" || r.Confidence <= 0 || r.TimeSource != "system" || r.Position != nil || r.CropURL != "/read/"+r.ID+".jpg" {
			t.Errorf("recent read = %+v", r)
		}
		seen := false
		for _, r := range st.RecentReads {
			seen = seen || r.Plate == "YG9X2G"
		}
		if !seen {
			t.Errorf("recent reads %+v: none is the clip's YG9X2G", st.RecentReads)
		}
	})

	t.Run("Images", func(t *testing.T) {
		for _, path := range []string{"/camera/front.jpg", st.RecentReads[0].CropURL} {
			resp, body := httpGet(t, base+path, "", "")
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/jpeg" {
				t.Fatalf("%s: %s %s", path, resp.Status, resp.Header.Get("Content-Type"))
			}
			img, err := jpeg.Decode(bytes.NewReader(body))
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			t.Logf("%s: %v, %d bytes", path, img.Bounds().Size(), len(body))
			if path == "/camera/front.jpg" && img.Bounds().Dx() != diagThumbWidth {
				t.Errorf("thumbnail width %d, want %d", img.Bounds().Dx(), diagThumbWidth)
			}
		}
		if resp, _ := httpGet(t, base+"/camera/rear.jpg", "", ""); resp.StatusCode != 404 {
			t.Errorf("unknown camera: %s, want 404", resp.Status)
		}
		if resp, _ := httpGet(t, base+"/read/nope.jpg", "", ""); resp.StatusCode != 404 {
			t.Errorf("unknown read: %s, want 404", resp.Status)
		}
	})

	t.Run("Metrics", func(t *testing.T) {
		resp, body := httpGet(t, base+"/metrics", "", "")
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain; version=0.0.4") {
			t.Fatalf("metrics: %s %s", resp.Status, resp.Header.Get("Content-Type"))
		}
		m := parseMetrics(t, string(body))
		if v := m[`alpr_camera_frames_total{camera="front"}`]; v < 1 {
			t.Errorf("frames_total = %v", v)
		}
		if v := m["alpr_reads_total"]; v < 1 {
			t.Errorf("reads_total = %v", v)
		}
		for _, k := range []string{`alpr_camera_dropped_frames_total{camera="front"}`, "alpr_spool_records", "alpr_uplink_in_flight",
			"alpr_uplink_reconnects_total", "alpr_uplink_connected", "alpr_gnss_fix",
			`alpr_uplink_receipt_latency_seconds_bucket{le="+Inf"}`, "alpr_uplink_receipt_latency_seconds_count", `alpr_build_info{version="` + version + `",device="diag-test-1"}`} {
			if _, ok := m[k]; !ok {
				t.Errorf("metric %s missing", k)
			}
		}
		if _, ok := m["alpr_gnss_fix_age_seconds"]; ok {
			t.Error("alpr_gnss_fix_age_seconds present without a receiver")
		}
	})

	t.Run("DiagCommand", func(t *testing.T) {
		var out, errb bytes.Buffer
		if err := dispatch(context.Background(), []string{"diag", "--addr", addr}, &out, &errb); err != nil {
			t.Fatalf("diag: %v (%s)", err, errb.String())
		}
		t.Logf("alpr-agent diag:\n%s", out.String())
		for _, want := range []string{"diag-test-1", "camera front", "live", "gnss", "not configured", "spool", "uplink", "connected", plate, "last reads:"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("diag output lacks %q", want)
			}
		}
		out.Reset()
		if err := dispatch(context.Background(), []string{"diag", "--json", "--addr", "http://" + addr}, &out, &errb); err != nil {
			t.Fatalf("diag --json: %v", err)
		}
		var js diagStatus
		if err := json.Unmarshal(out.Bytes(), &js); err != nil || js.Device != "diag-test-1" || len(js.RecentReads) == 0 {
			t.Errorf("diag --json: %v %+v", err, js)
		}
	})

	t.Run("Chromium", func(t *testing.T) {
		chromiumPage(t, base+"/", plate)
	})

	stopAgent()
	if _, err := http.Get(base + "/status.json"); err == nil {
		t.Error("diag listener still answers after Run returned")
	}
	var out, errb bytes.Buffer
	err := dispatch(context.Background(), []string{"diag", "--addr", addr}, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "no agent answering at "+addr) {
		t.Errorf("diag with the agent stopped: %v", err)
	}
	t.Logf("total %v", time.Since(start).Round(time.Millisecond))
}

// chromiumPage loads the page in headless Chromium, keeps a screenshot
// (in $ALPR_DIAG_SCREENSHOT_DIR when set) and checks the DOM shows plate.
func chromiumPage(t *testing.T, url, plate string) {
	bin, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("chromium missing under CI (apt-get install chromium): %v", err)
		}
		t.Skipf("chromium not installed: %v", err)
	}
	dir := os.Getenv("ALPR_DIAG_SCREENSHOT_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	shot := filepath.Join(dir, "diag-status.png")
	os.Remove(shot)
	run := func(args ...string) []byte {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
			"--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
			"--user-data-dir=" + t.TempDir(), "--window-size=412,900"}
		cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
		cmd.WaitDelay = 5 * time.Second
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		began := time.Now()
		if err := cmd.Run(); err != nil {
			t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
		}
		t.Logf("chromium %s: %v", args[0], time.Since(began).Round(time.Millisecond))
		return stdout.Bytes()
	}
	run("--screenshot="+shot, url)
	raw, err := os.ReadFile(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	colors := map[uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 7 {
		for x := b.Min.X; x < b.Max.X; x += 7 {
			r, g, bl, _ := img.At(x, y).RGBA()
			colors[r>>8<<16|g>>8<<8|bl>>8] = true
		}
	}
	if b.Dx() < 400 || len(raw) < 10_000 || len(colors) < 50 {
		t.Errorf("screenshot %s looks empty: %v, %d bytes, %d colours", shot, b.Size(), len(raw), len(colors))
	}
	t.Logf("screenshot %s: %v, %d bytes", shot, b.Size(), len(raw))

	dom := string(run("--dump-dom", url))
	for _, want := range []string{`<div class="plate">` + plate + `</div>`, `src="/camera/front.jpg?t=`, `id="gnss"`, `id="spool"`, `id="uplink"`} {
		if !strings.Contains(dom, want) {
			t.Errorf("DOM lacks %q", want)
		}
	}
}

var metricLineRE = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? (\S+)$`)

// parseMetrics checks every line of the text format and returns the
// samples by name{labels}. Each sample must follow its family's TYPE.
func parseMetrics(t *testing.T, text string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	typed := map[string]bool{}
	for i, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			f := strings.Fields(rest)
			if len(f) != 2 || (f[1] != "counter" && f[1] != "gauge" && f[1] != "histogram") {
				t.Errorf("line %d: bad TYPE %q", i+1, line)
			}
			typed[f[0]] = true
			if f[1] == "histogram" {
				for _, suf := range []string{"_bucket", "_sum", "_count"} {
					typed[f[0]+suf] = true
				}
			}
			continue
		}
		if strings.HasPrefix(line, "# HELP ") {
			continue
		}
		m := metricLineRE.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("line %d does not parse: %q", i+1, line)
			continue
		}
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			t.Errorf("line %d value: %v", i+1, err)
		}
		if !typed[m[1]] {
			t.Errorf("line %d: %s has no TYPE before it", i+1, m[1])
		}
		if strings.HasSuffix(m[1], "_total") && v < 0 {
			t.Errorf("line %d: negative counter", i+1)
		}
		out[m[1]+m[2]] = v
	}
	return out
}

// fakeHealth is a status without an agent, for what needs no recognizer.
func fakeHealth() Health {
	return Health{V: 1, Device: "unit-\"quoted\"", Version: "test", Reads: 3, Throttle: 1,
		Cameras: []CameraHealth{{Stats: capture.Stats{Camera: "front", FramesIn: 10, FPS: 9.5}, LastFrameAgeMS: 120}},
		GNSS:    GNSSHealth{Enabled: true, PortOpen: true, HasFix: true, FixAgeMS: 400, Mode: 3, Sats: 9, HDOP: 0.9},
		Spool:   SpoolHealth{Records: 2, Bytes: 2048, OldestAgeMS: 1500},
		Uplink:  UplinkHealth{Connected: true, InFlight: 1, LastReceiptMS: -1},
		Temps:   []boards.Temperature{{Zone: "cpu-thermal", Celsius: 51.5}},
		Board:   []boards.Peripheral{{Name: "gpio", State: boards.Absent, Reason: "no GPIO on this host"}},
	}
}

func startFakeDiag(t *testing.T, cfg DiagConfig) *diagServer {
	t.Helper()
	st := newDiagState()
	st.addRead(uplink.Read{ID: "r1", Camera: "front", Plate: "ABC123", Confidence: 0.9, Time: time.Now(), TimeSource: "gnss",
		Position: &uplink.Position{Lat: 47.6, Lon: -122.3, Fix: "3d"}, CropJPEG: []byte("\xff\xd8fake")})
	s := newDiagServer(cfg, st, fakeHealth, silentLogger())
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return s
}

func TestDiagServer_BasicAuth(t *testing.T) {
	s := startFakeDiag(t, DiagConfig{Listen: "127.0.0.1:0", Username: "tech", Password: "s3cret"})
	base := "http://" + s.Addr()
	for _, path := range []string{"/", "/status.json", "/metrics", "/camera/front.jpg", "/read/r1.jpg"} {
		for _, c := range []struct{ user, pass string }{{"", ""}, {"tech", "wrong"}, {"other", "s3cret"}} {
			if resp, _ := httpGet(t, base+path, c.user, c.pass); resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("%s as %q/%q: %s, want 401 with a challenge", path, c.user, c.pass, resp.Status)
			}
		}
	}
	resp, body := httpGet(t, base+"/status.json", "tech", "s3cret")
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte(`"ABC123"`)) {
		t.Errorf("with credentials: %s %s", resp.Status, body)
	}

	var out, errb bytes.Buffer
	err := dispatch(context.Background(), []string{"diag", "--addr", s.Addr()}, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "wants a username and password") {
		t.Errorf("diag without --user: %v", err)
	}
	t.Setenv("ALPR_DIAG_PASSWORD", "wrong")
	err = dispatch(context.Background(), []string{"diag", "--addr", s.Addr(), "--user", "tech"}, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), `refused user "tech"`) {
		t.Errorf("diag with a wrong password: %v", err)
	}
	t.Setenv("ALPR_DIAG_PASSWORD", "s3cret")
	if err := dispatch(context.Background(), []string{"diag", "--addr", s.Addr(), "--user", "tech"}, &out, &errb); err != nil {
		t.Fatalf("diag with credentials: %v", err)
	}
	for _, want := range []string{"3D fix, 9 satellites, HDOP 0.9", "2 reads waiting", "ABC123", "47.60000,-122.30000", "board gpio", "absent (no GPIO on this host)", "temp cpu-thermal"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("diag output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestDiagServer_FakeHealth(t *testing.T) {
	s := startFakeDiag(t, DiagConfig{Listen: "127.0.0.1:0"})
	base := "http://" + s.Addr()
	_, body := httpGet(t, base+"/metrics", "", "")
	m := parseMetrics(t, string(body))
	for k, want := range map[string]float64{
		`alpr_build_info{version="test",device="unit-\"quoted\""}`: 1,
		`alpr_camera_fps{camera="front"}`:                          9.5,
		"alpr_gnss_fix_age_seconds":                                0.4,
		"alpr_gnss_satellites":                                     9,
		"alpr_spool_oldest_age_seconds":                            1.5,
		`alpr_temperature_celsius{zone="cpu-thermal"}`:             51.5,
		`alpr_peripheral_state{name="gpio",state="absent"}`:        1,
	} {
		if got, ok := m[k]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, want)
		}
	}
	if _, ok := m["alpr_uplink_last_receipt_age_seconds"]; ok {
		t.Error("last receipt age present before any receipt")
	}
	resp, body := httpGet(t, base+"/", "", "")
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte(`<div class="plate">ABC123</div>`)) || !bytes.Contains(body, []byte(`http-equiv="refresh"`)) {
		t.Errorf("page: %s\n%s", resp.Status, body)
	}
	if resp, _ := httpGet(t, base+"/nope", "", ""); resp.StatusCode != 404 {
		t.Errorf("/nope: %s", resp.Status)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if _, err := http.Get(base + "/"); err == nil {
		t.Error("still serving after Close")
	}
}

func TestDiagState_RingKeepsNewest(t *testing.T) {
	d := newDiagState()
	for i := range diagRecentReads + 5 {
		d.addRead(uplink.Read{ID: strconv.Itoa(i), CropJPEG: []byte{byte(i)}})
	}
	got := d.recentReads()
	if len(got) != diagRecentReads || got[0].ID != strconv.Itoa(diagRecentReads+4) || got[len(got)-1].ID != "5" {
		t.Fatalf("ring: %d reads, newest %s, oldest %s", len(got), got[0].ID, got[len(got)-1].ID)
	}
	if _, ok := d.crop("4"); ok {
		t.Error("crop of an evicted read still served")
	}
	if c, ok := d.crop("7"); !ok || c[0] != 7 {
		t.Error("crop of a kept read missing")
	}
	var nilState *diagState // diag off: every hook is a no-op
	nilState.addRead(uplink.Read{ID: "x"})
	nilState.thumbnail("front", capture.Frame{})
	if nilState.recentReads() != nil {
		t.Error("nil state has reads")
	}
}

func TestDiagConfig_Validate(t *testing.T) {
	for _, c := range []struct {
		name, diag, wantErr string
	}{
		{"DefaultLoopback", "", ""},
		{"Off", `diag: {listen: ""}`, ""},
		{"Localhost", `diag: {listen: "localhost:9000"}`, ""},
		{"IPv6Loopback", `diag: {listen: "[::1]:9000"}`, ""},
		{"AllInterfacesNoAuth", `diag: {listen: ":8089"}`, `diag.username: diag.listen ":8089" is reachable from the network`},
		{"LANNoAuth", `diag: {listen: "192.168.1.20:8089"}`, "diag.username: "},
		{"LANWithAuth", `diag: {listen: "0.0.0.0:8089", username: tech, password: pw}`, ""},
		{"UserWithoutPassword", `diag: {listen: "127.0.0.1:8089", username: tech}`, "diag.password: "},
		{"NotHostPort", `diag: {listen: "8089"}`, `diag.listen: "8089" is not host:port`},
		{"BadPort", `diag: {listen: "127.0.0.1:http"}`, "diag.listen: "},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := LoadConfig(writeConfig(t, minimalConfig+c.diag+"\n"))
			switch {
			case c.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
				t.Fatalf("error %v, want one containing %q", err, c.wantErr)
			}
		})
	}
	if DefaultConfig().Diag.Listen != "127.0.0.1:8089" {
		t.Errorf("default diag.listen = %q", DefaultConfig().Diag.Listen)
	}
}

func TestDiagCommand_NoAgent(t *testing.T) {
	addr := freeAddr(t)
	var out, errb bytes.Buffer
	err := dispatch(context.Background(), []string{"diag", "--addr", addr, "--timeout", "2s"}, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "no agent answering at "+addr) {
		t.Fatalf("diag with nothing listening: %v", err)
	}
	if err := dispatch(context.Background(), []string{"diag", "extra"}, &out, &errb); err == nil || errors.Is(err, errUsage) {
		t.Errorf("diag with an argument: %v", err)
	}
}
