package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"image"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"gocv.io/x/gocv"

	"github.com/alpr-agent/alpr-agent/capture"
	"github.com/alpr-agent/alpr-agent/uplink"
)

// The diag listener is for a technician standing next to the unit (or an
// SSH tunnel to it) and for a Prometheus scraper: a status page, the same
// data as JSON, and metrics. It only reads counters; nothing it serves can
// change what the agent does.

const (
	diagRecentReads  = 20              // reads kept for the page, newest first
	diagThumbEvery   = time.Second     // a camera's thumbnail is encoded at most this often
	diagThumbWidth   = 320             // pixels; enough for a phone, ~10-20 kB of JPEG
	diagThumbQuality = 70              // JPEG quality of thumbnails
	diagCloseTimeout = 5 * time.Second // bound on the graceful shutdown
	diagPageRefresh  = 5               // seconds between page reloads
)

// diagState is what the page shows besides Health: the last reads with their
// crops and the newest thumbnail per camera. Every method is safe for
// concurrent use and a no-op on a nil *diagState (diag off).
type diagState struct {
	mu      sync.Mutex
	reads   []diagRead // ring of diagRecentReads
	next    int        // where the next read goes in reads
	total   int        // reads ever added (to tell a full ring)
	thumbs  map[string]diagThumb
	runners []*capture.Runner
}

// diagRead is one recent read as the page and /status.json show it.
type diagRead struct {
	ID         string           `json:"id"`
	Camera     string           `json:"camera"`
	Plate      string           `json:"plate"`
	Confidence float64          `json:"confidence"`
	Time       time.Time        `json:"time"`
	TimeSource string           `json:"time_source"`
	Position   *uplink.Position `json:"position"`
	Frames     int              `json:"frames"`
	CropURL    string           `json:"crop_url,omitempty"`
	crop       []byte
}

// diagThumb is a camera's newest downscaled frame. tried is set before the
// encode so that two frames never encode in the same second.
type diagThumb struct {
	jpeg  []byte
	at    time.Time // capture time of the frame
	tried time.Time
}

func newDiagState() *diagState {
	return &diagState{reads: make([]diagRead, diagRecentReads), thumbs: map[string]diagThumb{}}
}

// addRead records a read that is now in the spool.
func (d *diagState) addRead(rd uplink.Read) {
	if d == nil {
		return
	}
	r := diagRead{ID: rd.ID, Camera: rd.Camera, Plate: rd.Plate, Confidence: rd.Confidence, Time: rd.Time,
		TimeSource: rd.TimeSource, Position: rd.Position, Frames: rd.Frames, crop: rd.CropJPEG}
	if len(r.crop) > 0 {
		r.CropURL = "/read/" + rd.ID + ".jpg"
	}
	d.mu.Lock()
	d.reads[d.next] = r
	d.next = (d.next + 1) % len(d.reads)
	d.total++
	d.mu.Unlock()
}

// recentReads returns the kept reads, newest first.
func (d *diagState) recentReads() []diagRead {
	if d == nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	n := min(d.total, len(d.reads))
	out := make([]diagRead, 0, n)
	for i := 1; i <= n; i++ {
		out = append(out, d.reads[(d.next-i+len(d.reads))%len(d.reads)])
	}
	return out
}

// crop returns the crop of a kept read.
func (d *diagState) crop(id string) ([]byte, bool) {
	if d == nil {
		return nil, false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, r := range d.reads {
		if r.ID == id && len(r.crop) > 0 {
			return r.crop, true
		}
	}
	return nil, false
}

// thumbnail keeps a downscaled JPEG of f when the camera's last one is at
// least diagThumbEvery old. The caller keeps ownership of f.
func (d *diagState) thumbnail(camera string, f capture.Frame) {
	if d == nil || f.Img.Ptr() == nil || f.Img.Empty() {
		return
	}
	now := time.Now()
	d.mu.Lock()
	t := d.thumbs[camera]
	if now.Sub(t.tried) < diagThumbEvery {
		d.mu.Unlock()
		return
	}
	t.tried = now
	d.thumbs[camera] = t
	d.mu.Unlock()

	jpeg, err := encodeThumb(f.Img)
	if err != nil {
		return // the page shows the previous thumbnail; the next second retries
	}
	d.mu.Lock()
	t = d.thumbs[camera]
	t.jpeg, t.at = jpeg, f.Time
	d.thumbs[camera] = t
	d.mu.Unlock()
}

func encodeThumb(img gocv.Mat) ([]byte, error) {
	w, h := img.Cols(), img.Rows()
	if w > diagThumbWidth {
		w, h = diagThumbWidth, max(1, h*diagThumbWidth/w)
	}
	small := gocv.NewMat()
	defer small.Close()
	gocv.Resize(img, &small, image.Pt(w, h), 0, 0, gocv.InterpolationArea)
	buf, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, small, []int{gocv.IMWriteJpegQuality, diagThumbQuality})
	if err != nil {
		return nil, fmt.Errorf("encode thumbnail: %w", err)
	}
	defer buf.Close()
	return bytes.Clone(buf.GetBytes()), nil
}

func (d *diagState) thumb(camera string) ([]byte, time.Time, bool) {
	if d == nil {
		return nil, time.Time{}, false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	t, ok := d.thumbs[camera]
	return t.jpeg, t.at, ok && len(t.jpeg) > 0
}

func (d *diagState) setRunners(rs []*capture.Runner) {
	if d == nil {
		return
	}
	d.mu.Lock()
	d.runners = rs
	d.mu.Unlock()
}

func (d *diagState) cameraRunners() []*capture.Runner {
	if d == nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.runners
}

// startDiag starts the diag listener when diag.listen is set and returns
// the function that stops it. A listener that cannot bind is logged, not
// fatal: the unit keeps reading plates without its status page.
func (a *Agent) startDiag(ctx context.Context) (stop func(context.Context)) {
	noop := func(context.Context) {}
	if a.cfg.Diag.Listen == "" {
		return noop
	}
	a.diag = newDiagState()
	log := a.log.With("subsystem", "diag")
	srv := newDiagServer(a.cfg.Diag, a.diag, func() Health { return a.health(a.diag.cameraRunners()) }, log)
	srv.audit = a.guard.diagAccess
	if err := srv.Start(ctx); err != nil {
		log.Error("diag listener not started: no status page or metrics", "err", err)
		a.diag = nil // nothing would show what it keeps
		return noop
	}
	log.Info("diag listening", "addr", srv.Addr(), "auth", a.cfg.Diag.Username != "")
	return func(ctx context.Context) {
		if err := srv.Close(ctx); err != nil {
			log.Warn("close diag listener", "err", err)
		}
	}
}

// diagServer serves the status page, /status.json and /metrics.
type diagServer struct {
	cfg    DiagConfig
	log    *slog.Logger
	state  *diagState
	health func() Health
	// audit records a request that returned plate data (what, how many);
	// nil records nothing.
	audit func(r *http.Request, what string, n int)

	srv  *http.Server
	ln   net.Listener
	done chan struct{} // closed when Serve returns

	closeOnce sync.Once
	closeErr  error
}

// newDiagServer serves health() and state on cfg.Listen; nothing listens
// until Start.
func newDiagServer(cfg DiagConfig, state *diagState, health func() Health, log *slog.Logger) *diagServer {
	s := &diagServer{cfg: cfg, log: log, state: state, health: health, done: make(chan struct{})}
	s.srv = &http.Server{
		Handler:           s.handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	return s
}

// Start binds the address and serves in a goroutine until Close.
func (s *diagServer) Start(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen diag %s: %w", s.cfg.Listen, err)
	}
	s.ln = ln
	s.srv.BaseContext = func(net.Listener) context.Context { return context.WithoutCancel(ctx) }
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("diag listener stopped", "err", err)
		}
	}()
	return nil
}

// Addr is the bound address (useful with port 0).
func (s *diagServer) Addr() string {
	if s.ln == nil {
		return s.cfg.Listen
	}
	return s.ln.Addr().String()
}

// Close lets requests in progress finish for up to diagCloseTimeout (or
// ctx), then cuts them. Idempotent.
func (s *diagServer) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		if s.ln == nil {
			return
		}
		ctx, cancel := context.WithTimeout(ctx, diagCloseTimeout)
		defer cancel()
		if err := s.srv.Shutdown(ctx); err != nil {
			s.closeErr = errors.Join(fmt.Errorf("shut down diag listener: %w", err), s.srv.Close())
		}
		<-s.done
	})
	return s.closeErr
}

func (s *diagServer) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.page)
	mux.HandleFunc("GET /status.json", s.statusJSON)
	mux.HandleFunc("GET /metrics", s.metrics)
	mux.HandleFunc("GET /camera/{file}", s.cameraJPEG)
	mux.HandleFunc("GET /read/{file}", s.readJPEG)
	if s.cfg.Username == "" {
		return mux
	}
	// Hash both sides so the comparison's time says nothing about length.
	wantUser, wantPass := sha256.Sum256([]byte(s.cfg.Username)), sha256.Sum256([]byte(s.cfg.Password))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		gotUser, gotPass := sha256.Sum256([]byte(u)), sha256.Sum256([]byte(p))
		if !ok || subtle.ConstantTimeCompare(gotUser[:], wantUser[:])&subtle.ConstantTimeCompare(gotPass[:], wantPass[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="alpr-agent diag", charset="UTF-8"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// diagStatus is /status.json: Health plus the recent reads.
type diagStatus struct {
	Health
	RecentReads []diagRead `json:"recent_reads"`
}

func (s *diagServer) status() diagStatus {
	st := diagStatus{Health: s.health(), RecentReads: s.state.recentReads()}
	if st.RecentReads == nil {
		st.RecentReads = []diagRead{}
	}
	return st
}

func (s *diagServer) statusJSON(w http.ResponseWriter, r *http.Request) {
	st := s.status()
	s.audited(r, "status.json", len(st.RecentReads))
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		http.Error(w, "encode status: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(append(b, '\n'))
}

func (s *diagServer) cameraJPEG(w http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutSuffix(r.PathValue("file"), ".jpg")
	if !ok {
		http.NotFound(w, r)
		return
	}
	jpeg, at, ok := s.state.thumb(name)
	if !ok {
		http.Error(w, "no frame from camera "+strconv.Quote(name)+" yet", http.StatusNotFound)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	s.audited(r, "camera frame", 1) // a live frame shows plates too
	w.Header().Set("X-Frame-Age-Ms", strconv.FormatInt(time.Since(at).Milliseconds(), 10))
	serveJPEG(w, jpeg)
}

// audited records a request that returned plate data (n > 0) in the audit
// log. /metrics carries no plate data and is not recorded.
func (s *diagServer) audited(r *http.Request, what string, n int) {
	if s.audit != nil && n > 0 {
		s.audit(r, what, n)
	}
}

func (s *diagServer) readJPEG(w http.ResponseWriter, r *http.Request) {
	id, ok := strings.CutSuffix(r.PathValue("file"), ".jpg")
	if !ok {
		http.NotFound(w, r)
		return
	}
	jpeg, ok := s.state.crop(id)
	if !ok {
		http.Error(w, "no crop for read "+strconv.Quote(id)+" (not among the recent reads, or crops are off)", http.StatusNotFound)
		return
	}
	s.audited(r, "read crop", 1)
	// A read's crop never changes.
	w.Header().Set("Cache-Control", "private, max-age=3600")
	serveJPEG(w, jpeg)
}

func serveJPEG(w http.ResponseWriter, b []byte) {
	w.Header().Set("Content-Type", "image/jpeg")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.Write(b)
}

// metrics writes the Prometheus text exposition format (version 0.0.4) by
// hand: a dozen families do not need a client library.
// Publish latency is measured to the receipt, not the PUBACK (a PUBACK is
// not proof of delivery): alpr_uplink_receipt_latency_seconds.
func (s *diagServer) metrics(w http.ResponseWriter, _ *http.Request) {
	h := s.health()
	var m promWriter
	m.family("alpr_build_info", "gauge", "Version of the running agent (always 1).")
	m.sample("alpr_build_info", 1, "version", h.Version, "device", h.Device)

	type camMetric struct {
		name, typ, help string
		val             func(CameraHealth) (float64, bool)
	}
	camMetrics := []camMetric{
		{"alpr_camera_frames_total", "counter", "Frames read from the camera.", func(c CameraHealth) (float64, bool) { return float64(c.FramesIn), true }},
		{"alpr_camera_dropped_frames_total", "counter", "Oldest frames dropped because recognition was behind.", func(c CameraHealth) (float64, bool) { return float64(c.Dropped), true }},
		{"alpr_camera_bad_frames_total", "counter", "Frames that did not decode.", func(c CameraHealth) (float64, bool) { return float64(c.BadFrames), true }},
		{"alpr_camera_incomplete_frames_total", "counter", "Frames the camera delivered incomplete.", func(c CameraHealth) (float64, bool) { return float64(c.Incomplete), true }},
		{"alpr_camera_failures_total", "counter", "Failed opens and broken reads.", func(c CameraHealth) (float64, bool) { return float64(c.Failures), true }},
		{"alpr_camera_reopens_total", "counter", "Successful opens after a failure.", func(c CameraHealth) (float64, bool) { return float64(c.Reopens), true }},
		{"alpr_camera_queued_frames", "gauge", "Frames waiting for recognition.", func(c CameraHealth) (float64, bool) { return float64(c.Queued), true }},
		{"alpr_camera_fps", "gauge", "Frame rate (moving average of frame timestamps).", func(c CameraHealth) (float64, bool) { return c.FPS, true }},
		{"alpr_camera_last_frame_age_seconds", "gauge", "Age of the newest frame (absent before the first).", func(c CameraHealth) (float64, bool) {
			return float64(c.LastFrameAgeMS) / 1000, c.LastFrameAgeMS >= 0
		}},
	}
	for _, cm := range camMetrics {
		m.family(cm.name, cm.typ, cm.help)
		for _, c := range h.Cameras {
			if v, ok := cm.val(c); ok {
				m.sample(cm.name, v, "camera", c.Camera)
			}
		}
	}

	m.gauge("alpr_reads_total", "counter", "Reads stored in the spool since start.", float64(h.Reads))
	m.gauge("alpr_throttled_frames_total", "counter", "Frames skipped because the CPU ran hot.", float64(h.Throttled))
	m.gauge("alpr_throttle_ratio", "gauge", "Share of frames recognized now (1 = all).", h.Throttle)

	m.gauge("alpr_spool_records", "gauge", "Reads waiting in the spool.", float64(h.Spool.Records))
	m.gauge("alpr_spool_bytes", "gauge", "Bytes of reads waiting in the spool.", float64(h.Spool.Bytes))
	m.gauge("alpr_spool_oldest_age_seconds", "gauge", "Age of the oldest waiting read (0 when empty).", float64(h.Spool.OldestAgeMS)/1000)
	m.gauge("alpr_spool_full", "gauge", "1 when the spool refuses new reads.", b2f(h.Spool.Full))
	m.gauge("alpr_spool_refused_total", "counter", "Reads the full spool refused.", float64(h.Spool.Refused))
	m.gauge("alpr_spool_dropped_total", "counter", "Non-hit reads dropped to make room (full_policy drop_oldest).", float64(h.Spool.Dropped))
	m.gauge("alpr_spool_expired_total", "counter", "Reads removed by retention.", float64(h.Spool.Expired))
	m.gauge("alpr_spool_set_aside", "gauge", "Records that could not be decoded or decrypted.", float64(h.Spool.SetAside))
	m.gauge("alpr_spool_moved_aside", "gauge", "1 when a damaged spool file was moved aside at start.", b2f(h.Spool.MovedAside != ""))
	m.gauge("alpr_spool_keys_shredded_total", "counter", "Period keys destroyed at the end of their retention.", float64(h.Spool.Shredded))
	m.gauge("alpr_reads_not_stored_total", "counter", "Reads lost because the spool refused them.", float64(h.Spool.NotStored))

	m.gauge("alpr_uplink_connected", "gauge", "1 when the broker session is up and subscribed to receipts.", b2f(h.Uplink.Connected))
	m.gauge("alpr_uplink_receipt_alarm", "gauge", "1 when published reads have waited too long for any receipt.", b2f(h.Uplink.Alarm != ""))
	m.gauge("alpr_hotlist_entries", "gauge", "Entries of the hotlist in use.", float64(h.Privacy.HotlistEntries))
	m.gauge("alpr_hotlist_hits_total", "counter", "Reads that matched the hotlist.", float64(h.Privacy.Hits))
	m.gauge("alpr_hotlist_rejected_total", "counter", "Hotlist messages refused (signature, replay, size, format).", float64(h.Privacy.HotlistRejected))
	m.gauge("alpr_reads_discarded_total", "counter", "Hits-only mode: non-hit reads counted and not kept.", float64(h.Privacy.Discarded))
	m.gauge("alpr_uplink_in_flight", "gauge", "Reads published and awaiting a receipt.", float64(h.Uplink.InFlight))
	m.gauge("alpr_uplink_reconnects_total", "counter", "Broker connections after the first.", float64(h.Uplink.Reconnects))
	m.gauge("alpr_uplink_acked_total", "counter", "Reads confirmed by the central side and deleted.", float64(h.Uplink.Acked))
	m.family("alpr_uplink_receipt_latency_seconds", "histogram", "Time from publishing a read to the central receipt that deleted it.")
	lat := h.Uplink.ReceiptLatency
	for i, le := range uplink.LatencyBuckets {
		var c uint64
		if i < len(lat.Counts) {
			c = lat.Counts[i]
		}
		m.sample("alpr_uplink_receipt_latency_seconds_bucket", float64(c), "le", strconv.FormatFloat(le, 'g', -1, 64))
	}
	m.sample("alpr_uplink_receipt_latency_seconds_bucket", float64(lat.Count), "le", "+Inf")
	m.sample("alpr_uplink_receipt_latency_seconds_sum", lat.Sum)
	m.sample("alpr_uplink_receipt_latency_seconds_count", float64(lat.Count))
	if h.Uplink.LastReceiptMS >= 0 {
		m.gauge("alpr_uplink_last_receipt_age_seconds", "gauge", "Time since the last receipt (absent before the first).", float64(h.Uplink.LastReceiptMS)/1000)
	}

	m.gauge("alpr_gnss_port_open", "gauge", "1 when the receiver's serial port is open.", b2f(h.GNSS.PortOpen))
	m.gauge("alpr_gnss_fix", "gauge", "1 when the receiver has a fix.", b2f(h.GNSS.HasFix))
	if h.GNSS.FixAgeMS >= 0 {
		m.gauge("alpr_gnss_fix_age_seconds", "gauge", "Age of the last fix (absent before the first).", float64(h.GNSS.FixAgeMS)/1000)
	}
	if h.GNSS.HasFix {
		m.gauge("alpr_gnss_satellites", "gauge", "Satellites used in the fix.", float64(h.GNSS.Sats))
		m.gauge("alpr_gnss_hdop", "gauge", "Horizontal dilution of precision of the fix.", h.GNSS.HDOP)
	}
	m.gauge("alpr_gnss_bad_sentences_total", "counter", "NMEA sentences that failed to decode.", float64(h.GNSS.BadSentences))

	m.family("alpr_temperature_celsius", "gauge", "Thermal zone temperatures.")
	for _, t := range h.Temps {
		m.sample("alpr_temperature_celsius", t.Celsius, "zone", t.Zone)
	}
	m.family("alpr_peripheral_state", "gauge", "Board peripherals by state (1 for the current one).")
	for _, p := range h.Board {
		m.sample("alpr_peripheral_state", 1, "name", p.Name, "state", string(p.State))
	}

	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	io.WriteString(w, m.b.String())
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// promWriter builds the text exposition format.
type promWriter struct{ b strings.Builder }

func (m *promWriter) family(name, typ, help string) {
	fmt.Fprintf(&m.b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
}

// sample writes one line; labels are name, value pairs.
func (m *promWriter) sample(name string, v float64, labels ...string) {
	m.b.WriteString(name)
	if len(labels) > 0 {
		m.b.WriteByte('{')
		for i := 0; i+1 < len(labels); i += 2 {
			if i > 0 {
				m.b.WriteByte(',')
			}
			fmt.Fprintf(&m.b, "%s=\"%s\"", labels[i], promEscape(labels[i+1]))
		}
		m.b.WriteByte('}')
	}
	m.b.WriteByte(' ')
	m.b.WriteString(promFloat(v))
	m.b.WriteByte('\n')
}

func (m *promWriter) gauge(name, typ, help string, v float64) {
	m.family(name, typ, help)
	m.sample(name, v)
}

var promEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

func promEscape(s string) string { return promEscaper.Replace(s) }

func promFloat(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// validate checks the diag keys; Config.Validate names them.
func (c DiagConfig) validate() []struct{ key, msg string } {
	var errs []struct{ key, msg string }
	bad := func(key, format string, args ...any) {
		errs = append(errs, struct{ key, msg string }{key, fmt.Sprintf(format, args...)})
	}
	if c.Listen == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(c.Listen)
	if err != nil {
		bad("diag.listen", "%q is not host:port (127.0.0.1:8089; \"\" turns the listener off)", c.Listen)
		return errs
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		bad("diag.listen", "%q: port %q is not a number in 0..65535", c.Listen, port)
	}
	if (c.Username == "") != (c.Password == "") {
		bad("diag.password", "diag.username and diag.password are set together or not at all")
	}
	if !isLoopbackHost(host) && (c.Username == "" || c.Password == "") {
		bad("diag.username", "diag.listen %q is reachable from the network: set diag.username and diag.password (basic auth), or listen on 127.0.0.1", c.Listen)
	}
	return errs
}

// isLoopbackHost: "" and 0.0.0.0 mean every interface, so they are not.
func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

//go:embed web/status.html
var diagWeb embed.FS

var diagPage = template.Must(template.New("status.html").Funcs(template.FuncMap{
	"age": fmtAgeMS,
	"pct": func(f float64) string { return strconv.Itoa(int(math.Round(f*100))) + "%" },
	"kb":  func(n int64) string { return fmtBytes(n) },
	"f1":  func(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) },
	"plural": func(n int64, word string) string {
		if n == 1 {
			return "1 " + word
		}
		return strconv.FormatInt(n, 10) + " " + word + "s"
	},
	"clock": func(t time.Time) string {
		return t.Local().Format("15:04:05")
	},
}).ParseFS(diagWeb, "web/status.html"))

// diagPageData is the page's view of a status.
type diagPageData struct {
	diagStatus
	Refresh int
	Stamp   int64 // defeats image caches between reloads
}

func (s *diagServer) page(w http.ResponseWriter, r *http.Request) {
	st := s.status()
	s.audited(r, "status page", len(st.RecentReads))
	sort.SliceStable(st.Cameras, func(i, j int) bool { return st.Cameras[i].Camera < st.Cameras[j].Camera })
	var buf bytes.Buffer
	if err := diagPage.Execute(&buf, diagPageData{diagStatus: st, Refresh: diagPageRefresh, Stamp: time.Now().UnixMilli()}); err != nil {
		http.Error(w, "render status page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(buf.Bytes())
}

// fmtAgeMS turns a millisecond age into "0.4 s", "3 min", "never" (-1).
func fmtAgeMS(ms int64) string {
	switch {
	case ms < 0:
		return "never"
	case ms < 10_000:
		return strconv.FormatFloat(float64(ms)/1000, 'f', 1, 64) + " s"
	case ms < 120_000:
		return strconv.FormatInt(ms/1000, 10) + " s"
	case ms < 2*3600_000:
		return strconv.FormatInt(ms/60_000, 10) + " min"
	case ms < 48*3600_000:
		return strconv.FormatInt(ms/3600_000, 10) + " h"
	}
	return strconv.FormatInt(ms/86400_000, 10) + " d"
}

func fmtBytes(n int64) string {
	switch {
	case n < 1<<10:
		return strconv.FormatInt(n, 10) + " B"
	case n < 1<<20:
		return strconv.FormatFloat(float64(n)/(1<<10), 'f', 1, 64) + " kB"
	case n < 1<<30:
		return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MB"
	}
	return strconv.FormatFloat(float64(n)/(1<<30), 'f', 2, 64) + " GB"
}
