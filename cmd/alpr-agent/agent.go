package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alpr-agent/alpr-agent/boards"
	"github.com/alpr-agent/alpr-agent/capture"
	"github.com/alpr-agent/alpr-agent/gnss"
	"github.com/alpr-agent/alpr-agent/recognize"
	"github.com/alpr-agent/alpr-agent/spool"
	"github.com/alpr-agent/alpr-agent/uplink"

	"gocv.io/x/gocv"
)

// Agent wires the stages: capture → recognize → track → stamp → spool →
// uplink. It is the only place that knows them all.
type Agent struct {
	cfg Config
	log *slog.Logger

	spool  *spool.Spool
	uplink *uplink.Uplink
	reader *recognize.Recognizer
	gnss   *gnss.Receiver
	board  *boards.Board
	guard  *guard
	// boardHook lets tests put fake pins behind the board (boardstest).
	boardHook func(*boards.Config)

	readerMu  sync.Mutex // one Recognize at a time: sessions are shared by cameras
	reads     atomic.Int64
	throttled atomic.Int64 // frames skipped while the CPU was too hot
	// gates are the cameras' motion gates by camera name (absent when
	// off); set before the cameras start, read-only after.
	gates     map[string]*capture.MotionGate
	notStored atomic.Uint64 // reads the spool refused (full disk): lost, and said so

	// diag holds what the diag page shows besides Health (recent reads,
	// thumbnails); nil when diag.listen is off. Set before sources start.
	diag *diagState
}

// RunOptions change how Run ends.
type RunOptions struct {
	// UntilEOF ends the run once every camera has reached the end of its
	// file and the spool has drained (the demo and tests; never on a device).
	UntilEOF bool
	// DrainTimeout bounds the wait for the spool to empty at the end.
	DrainTimeout time.Duration
}

// NewAgent checks the configuration's files; nothing starts until Run.
func NewAgent(cfg Config, logger *slog.Logger) *Agent {
	return &Agent{cfg: cfg, log: logger}
}

// Run starts the stages sink-first, runs until ctx ends (or the clip ends
// with UntilEOF), and stops them source-first so that nothing in flight is
// lost: capture stops, open passes are flushed into the spool, the uplink
// gets DrainTimeout to deliver, then everything closes.
func (a *Agent) Run(ctx context.Context, opt RunOptions) (err error) {
	if opt.DrainTimeout == 0 {
		opt.DrainTimeout = 30 * time.Second
	}
	cfg := a.cfg
	closeCtx := context.WithoutCancel(ctx)
	// Sinks outlive a signal: they must deliver what capture already made.
	// They stop when Run returns, after the drain.
	sinkCtx, stopSinks := context.WithCancel(closeCtx)
	defer stopSinks()

	sopt, err := spoolOptions(cfg)
	if err != nil {
		return configError{err}
	}
	sp, err := spool.Open(cfg.Spool.Path, sopt)
	if errors.Is(err, spool.ErrKey) {
		return configError{fmt.Errorf("open spool: %w", err)}
	}
	if err != nil {
		return fmt.Errorf("open spool: %w", err)
	}
	a.spool = sp
	defer func() { err = errors.Join(err, sp.Close()) }()
	ss := sp.Stats()
	if ss.MovedAside != "" {
		a.log.Error("SPOOL FILE WAS DAMAGED: moved aside, started a fresh spool; the old file is kept for recovery",
			"path", cfg.Spool.Path, "moved_to", ss.MovedAside, "reason", ss.MovedAsideReason)
	}
	a.log.Info("spool open", "path", cfg.Spool.Path, "records", sp.Len(), "encrypted", ss.Encrypted, "full_policy", sopt.FullPolicy)

	gc := gnss.DefaultConfig()
	gc.Port, gc.StaleAfter = cfg.GNSS.Port, cfg.GNSS.StaleAfter
	if cfg.GNSS.Baud > 0 {
		gc.Baud = cfg.GNSS.Baud
	} else {
		gc.Baud = gnss.BaudAuto
	}
	a.gnss = gnss.New(gc, a.log.With("subsystem", "gnss")) // started below, once the sinks run

	g, err := openGuard(cfg, a.wallNow, a.log.With("subsystem", "guard"))
	if err != nil {
		return err
	}
	a.guard = g
	defer func() { err = errors.Join(err, g.Close()) }()
	a.log.Info("privacy", "hits_only", g.hitsOnly.Load(), "crops", g.crops.Load(), "full_frames", cfg.Privacy.FullFrames,
		"encrypted_at_rest", ss.Encrypted, "retention", cfg.Retention.MaxAge, "hotlist", g.hot != nil)

	uc := uplink.DefaultConfig()
	uc.Broker, uc.Device = cfg.Uplink.Broker, cfg.Device
	uc.Username, uc.Password = cfg.Uplink.Username, cfg.Uplink.Password
	uc.CAFile, uc.CertFile, uc.KeyFile, uc.Insecure = cfg.Uplink.CAFile, cfg.Uplink.CertFile, cfg.Uplink.KeyFile, cfg.Uplink.Insecure
	uc.Batch, uc.Inflight, uc.ResendAfter, uc.ReceiptMode = cfg.Uplink.Batch, cfg.Uplink.Inflight, cfg.Uplink.ResendAfter, cfg.Uplink.ReceiptMode
	uc.ReceiptAlarmAfter, uc.ResendBackoffMax = cfg.Uplink.ReceiptAlarmAfter, cfg.Uplink.ResendBackoffMax
	uc.Subscriptions = g.subscriptions()
	up, err := uplink.New(uc, sp, a.log.With("subsystem", "uplink"))
	if err != nil {
		return err
	}
	if err := up.Start(sinkCtx); err != nil {
		return fmt.Errorf("start uplink: %w", err)
	}
	a.uplink = up
	defer func() { err = errors.Join(err, up.Close(closeCtx)) }()

	reader, err := openRecognizer(cfg.Recognize)
	if err != nil {
		return err
	}
	a.reader = reader
	defer reader.Close()

	if cfg.GNSS.Port != "" {
		if err := a.gnss.Start(sinkCtx); err != nil {
			return fmt.Errorf("start gnss: %w", err)
		}
		defer func() { err = errors.Join(err, a.gnss.Close(closeCtx)) }()
	} else {
		a.log.Warn("no GNSS receiver configured: reads carry position null and system time")
	}

	bc := cfg.Board.boardConfig()
	if a.boardHook != nil {
		a.boardHook(&bc)
	}
	a.board = boards.New(bc, a.log)
	if err := a.board.Start(sinkCtx); err != nil {
		return err
	}
	defer a.board.Close(closeCtx)
	for _, p := range a.board.Peripherals() {
		a.log.Info("peripheral", "name", p.Name, "state", p.State, "reason", p.Reason)
	}
	go a.driveStatusLED(sinkCtx)
	stopDiag := a.startDiag(sinkCtx)
	defer stopDiag(closeCtx)

	// Sources last. Each camera has its own runner, tracker and goroutine.
	stopCapture := make(chan struct{})
	var wg sync.WaitGroup
	var runners []*capture.Runner
	a.gates = map[string]*capture.MotionGate{}
	for _, cam := range cfg.Cameras {
		if !cam.Motion.enabled() {
			continue
		}
		g, err := capture.NewMotionGate(cam.Motion.MotionConfig)
		if err != nil {
			return fmt.Errorf("camera %s: %w", cam.Name, err)
		}
		defer g.Close()
		a.gates[cam.Name] = g
	}
	for _, cam := range cfg.Cameras {
		r := capture.NewRunner(cam.captureConfig(), cam.Queue, a.log.With("subsystem", "capture", "camera", cam.Name))
		if err := r.Start(ctx); err != nil {
			return fmt.Errorf("start camera %s: %w", cam.Name, err)
		}
		runners = append(runners, r)
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.camera(ctx, cam.Name, r, a.gates[cam.Name], stopCapture)
		}()
	}
	a.diag.setRunners(runners)
	allDone := make(chan struct{})
	go func() { wg.Wait(); close(allDone) }()
	healthCtx, stopHealth := context.WithCancel(ctx)
	defer stopHealth()
	go a.reportHealth(healthCtx, cfg.Diag.Interval, runners)

	a.board.SetCapturing(true)
	defer a.sdReady(closeCtx)()
	var eof <-chan struct{}
	if opt.UntilEOF {
		eof = allDone
	}
	select {
	case <-eof:
		a.log.Info("all cameras reached the end of their input")
	case <-a.board.ShutdownRequested():
		a.log.Warn("ignition off past the hold-off: shutting down")
	case <-ctx.Done():
	}
	a.log.Info("stopping: capture first, then drain")
	a.sdSend("STOPPING=1")
	a.board.SetCapturing(false)
	close(stopCapture)
	for _, r := range runners {
		if cerr := r.Close(closeCtx); cerr != nil {
			a.log.Warn("close camera", "err", cerr)
		}
	}
	<-allDone
	a.drain(ctx, opt)
	a.log.Info("stopped", "reads", a.reads.Load(), "spooled", sp.Len())
	return nil
}

// drain waits for the uplink to empty the spool, up to the timeout. A
// device keeps what is not delivered: the spool is durable.
func (a *Agent) drain(ctx context.Context, opt RunOptions) {
	if a.spool.Len() == 0 {
		return
	}
	deadline := time.NewTimer(opt.DrainTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	a.log.Info("draining spool", "records", a.spool.Len(), "timeout", opt.DrainTimeout)
	for a.spool.Len() > 0 {
		select {
		case <-tick.C:
		case <-deadline.C:
			a.log.Warn("drain timed out: reads stay in the spool for the next start", "records", a.spool.Len())
			return
		case <-ctxDoneUnlessUntilEOF(ctx, opt):
			a.log.Warn("interrupted while draining: reads stay in the spool", "records", a.spool.Len())
			return
		}
	}
}

// ctxDoneUnlessUntilEOF: when the run ended by EOF, a signal still cuts the
// drain short; when it ended by a signal, the drain gets its full timeout.
func ctxDoneUnlessUntilEOF(ctx context.Context, opt RunOptions) <-chan struct{} {
	if opt.UntilEOF && ctx.Err() == nil {
		return ctx.Done()
	}
	return nil
}

// camera runs recognition and tracking for one camera's frames; gate, if
// not nil, keeps frames without motion from the recognizer.
func (a *Agent) camera(ctx context.Context, name string, r *capture.Runner, gate *capture.MotionGate, stop <-chan struct{}) {
	tc := recognize.DefaultTrackerConfig()
	tc.MaxGap, tc.MaxDuration, tc.MinFrames = a.cfg.Tracker.MaxGap, a.cfg.Tracker.MaxDuration, a.cfg.Tracker.MinFrames
	tracker := recognize.NewTracker(tc)
	log := a.log.With("subsystem", "recognize", "camera", name)
	defer func() {
		for _, p := range tracker.Flush() {
			a.emit(ctx, name, p, log)
		}
	}()
	frames := r.Frames()
	var credit float64 // thermal throttle: share of frames recognized
	for {
		var f capture.Frame
		var ok bool
		select {
		case <-stop:
			return
		case f, ok = <-frames:
			if !ok {
				return
			}
		}
		a.board.FrameStart()
		if !a.guard.hitsOnly.Load() { // hits-only keeps no picture of passers-by, not even in memory
			a.diag.thumbnail(name, f) // at most once a second per camera
		}
		if gate != nil {
			if pass, _ := gate.Check(f); !pass {
				// Nothing moved: no detection, but the tracker learns that
				// time went by, so a pass whose plate left ends on time.
				passes := tracker.Observe(f.Time, f.Seq, nil)
				f.Close()
				for _, p := range passes {
					a.emit(ctx, name, p, log)
				}
				continue
			}
		}
		if credit += a.board.Throttle(); credit < 1 {
			a.throttled.Add(1)
			f.Close()
			continue
		}
		credit--
		// Observe before Close: it encodes the crop of a new best sighting
		// from this frame.
		passes := tracker.Observe(f.Time, f.Seq, a.recognizeFrame(f, log))
		f.Close()
		for _, p := range passes {
			a.emit(ctx, name, p, log)
		}
	}
}

func (a *Agent) recognizeFrame(f capture.Frame, log *slog.Logger) []recognize.Sighting {
	a.readerMu.Lock()
	plates, err := a.reader.Recognize(f.Img)
	a.readerMu.Unlock()
	if err != nil {
		log.Warn("recognize frame", "seq", f.Seq, "err", err)
		return nil
	}
	out := make([]recognize.Sighting, 0, len(plates))
	for _, p := range plates {
		s := recognize.Sighting{Plate: p}
		if a.guard.crops.Load() {
			s.Crop = func() []byte {
				crop, err := recognize.CropJPEG(f.Img, p.Box)
				if err != nil {
					log.Debug("crop plate", "seq", f.Seq, "err", err)
				}
				return crop
			}
		}
		if a.cfg.Privacy.FullFrames {
			s.Frame = func() []byte {
				frame, err := encodeFrame(f.Img)
				if err != nil {
					log.Debug("encode full frame", "seq", f.Seq, "err", err)
				}
				return frame
			}
		}
		out = append(out, s)
	}
	return out
}

// emit stamps a finished pass with time and position and spools it. The
// put is durable when it returns; a full spool is said loudly, never hidden.
func (a *Agent) emit(ctx context.Context, camera string, p recognize.Pass, log *slog.Logger) {
	rd := a.buildRead(camera, p)
	lane := spool.LaneRead
	if rd.Hotlist = a.guard.match(rd.Plate, rd.Time); rd.Hotlist.Hit {
		lane = spool.LaneAlert
		log.Warn("HOTLIST HIT", "id", rd.ID, "plate", rd.Plate, "entry", rd.Hotlist.Entry, "list", rd.Hotlist.List,
			"reason", rd.Hotlist.Reason, "match", rd.Hotlist.Match, "camera", camera)
	} else if a.guard.hitsOnly.Load() {
		// Hits-only: the read is counted and forgotten; its text, crop and
		// position are neither stored nor sent nor logged.
		a.guard.discarded.Add(1)
		return
	}
	payload, err := json.Marshal(rd)
	if err != nil {
		log.Error("encode read", "err", err)
		return
	}
	putCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := a.spool.Put(putCtx, spool.Record{ID: rd.ID, Lane: lane, Created: time.Now(), Payload: payload}); err != nil {
		a.notStored.Add(1)
		if errors.Is(err, spool.ErrFull) {
			log.Error("SPOOL FULL: READ NOT STORED; older reads are kept, new ones are refused until space returns",
				"id", rd.ID, "plate", rd.Plate, "not_stored", a.notStored.Load(), "err", err)
			return
		}
		log.Error("spool read: READ NOT STORED", "id", rd.ID, "plate", rd.Plate, "err", err)
		return
	}
	a.reads.Add(1)
	a.diag.addRead(rd)
	log.Info("read", "id", rd.ID, "plate", rd.Plate, "confidence", rd.Confidence, "frames", rd.Frames, "position", rd.Position != nil)
}

// buildRead turns a pass into the wire payload. Time comes from GNSS when
// there is a fix (boards often have no RTC), else from the system clock,
// and the read says which.
func (a *Agent) buildRead(camera string, p recognize.Pass) uplink.Read {
	rd := uplink.Read{
		V: 1, ID: uplink.NewID(), Device: a.cfg.Device, Camera: camera,
		Plate: p.Plate.Text, Confidence: round3(p.Plate.Confidence), Region: a.cfg.Recognize.Region,
		Time: p.Best.Round(0).UTC(), TimeSource: "system",
		Box:    [4]int{p.Plate.Box.Min.X, p.Plate.Box.Min.Y, p.Plate.Box.Dx(), p.Plate.Box.Dy()},
		Frames: p.Frames,
	}
	for _, c := range p.Plate.Candidates {
		rd.Candidates = append(rd.Candidates, uplink.Candidate{Plate: c.Text, Confidence: round3(c.Confidence)})
	}
	if a.guard.crops.Load() {
		rd.CropJPEG = p.Crop
	}
	if a.cfg.Privacy.FullFrames {
		rd.FrameJPEG = p.Frame
	}
	if a.gnss != nil {
		h := a.gnss.History()
		if wt, ok := h.WallTime(p.Best); ok {
			rd.Time, rd.TimeSource = wt.UTC(), "gnss"
		}
		if pos, ok := h.At(p.Best); ok {
			rd.Position = toWirePosition(pos)
		}
	}
	return rd
}

func toWirePosition(p gnss.Position) *uplink.Position {
	wp := &uplink.Position{
		Lat: round7(p.Lat), Lon: round7(p.Lon),
		SpeedMPS: round3(p.SpeedMPS), HeadingDeg: round3(p.TrackDeg),
		FixAgeMS: p.Age.Milliseconds(), Stale: p.Stale,
		Fix: "2d",
	}
	if p.HDOP > 0 {
		hdop := p.HDOP
		wp.HDOP = &hdop
	}
	if p.Mode == 3 {
		wp.Fix = "3d"
	}
	if p.HasAlt {
		alt := round3(p.AltM)
		wp.AltM = &alt
	}
	return wp
}

func round7(f float64) float64 { return math.Round(f*1e7) / 1e7 }

// driveStatusLED keeps the board's status LED on what a technician looking
// at the unit needs: fix or not, uplink up or not, something broken.
func (a *Agent) driveStatusLED(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		gs, us, ss := a.gnss.Status(), a.uplink.Status(), a.spool.Stats()
		fresh := gs.HasFix && time.Since(gs.LastFixAt) < a.cfg.GNSS.StaleAfter
		a.board.SetStatus(boards.Status{Fix: fresh, UplinkUp: us.Connected, Err: ss.Full})
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// fullFrameQuality is the JPEG quality of full frames (privacy.full_frames).
const fullFrameQuality = 85

// encodeFrame encodes a whole frame for a read; only used when the device
// is configured to keep full frames.
func encodeFrame(img gocv.Mat) ([]byte, error) {
	if img.Empty() {
		return nil, fmt.Errorf("encode frame: empty image")
	}
	buf, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, img, []int{gocv.IMWriteJpegQuality, fullFrameQuality})
	if err != nil {
		return nil, fmt.Errorf("encode frame: %w", err)
	}
	defer buf.Close()
	return bytes.Clone(buf.GetBytes()), nil
}

// spoolOptions turns the config into spool options, loading the at-rest key
// when one is configured.
func spoolOptions(cfg Config) (spool.Options, error) {
	policy, err := spool.ParseFullPolicy(cfg.Spool.FullPolicy)
	if err != nil {
		return spool.Options{}, err
	}
	opt := spool.Options{MaxBytes: cfg.Spool.MaxBytes, FullPolicy: policy, MaxAge: cfg.Retention.MaxAge,
		KeyPeriod: cfg.Spool.KeyPeriod, Timeout: 5 * time.Second}
	if cfg.Spool.KeyFile != "" {
		if opt.Key, err = spool.LoadKeyFile(cfg.Spool.KeyFile); err != nil {
			return spool.Options{}, fmt.Errorf("spool.key_file: %w", err)
		}
	}
	return opt, nil
}

// wallNow is the wall clock: GNSS time once there is a fix (boards without
// an RTC can boot years off), else the system clock.
func (a *Agent) wallNow() time.Time {
	now := time.Now()
	if a.gnss != nil {
		if wt, ok := a.gnss.History().WallTime(now); ok {
			return wt
		}
	}
	return now
}
