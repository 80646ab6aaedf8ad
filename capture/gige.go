//go:build !noaravis

package capture

/*
// aravis-0.8.pc lists libusb-1.0 in Requires.private, so `pkg-config
// aravis-0.8` fails unless libusb-1.0-0-dev is installed; name Aravis' own
// flags directly and take only GLib's from pkg-config. Elsewhere, add
// CGO_CFLAGS=-I<prefix>/include/aravis-0.8.
#cgo pkg-config: glib-2.0 gobject-2.0 gio-2.0
#cgo CFLAGS: -I/usr/include/aravis-0.8 -I/usr/local/include/aravis-0.8
#cgo LDFLAGS: -laravis-0.8
#include <stdlib.h>
#include <string.h>
#include <arv.h>

// alpr_gige is C memory because Aravis' heartbeat thread writes lost.
typedef struct {
	ArvCamera *cam;
	ArvStream *stream;
	ArvDevice *dev;
	gulong handler;
	gint lost;
} alpr_gige;

static void alpr_gige_control_lost(ArvDevice *dev, gpointer data) {
	g_atomic_int_set(&((alpr_gige *)data)->lost, 1);
}

static char *alpr_take_error(GError *err) {
	char *msg;
	if (err == NULL)
		return g_strdup("unknown error");
	msg = g_strdup(err->message);
	g_error_free(err);
	return msg;
}

static alpr_gige *alpr_gige_open(const char *id, char **errmsg) {
	GError *err = NULL;
	ArvCamera *cam = arv_camera_new(id, &err);
	alpr_gige *g;
	if (cam == NULL) {
		*errmsg = alpr_take_error(err);
		return NULL;
	}
	g = g_new0(alpr_gige, 1);
	g->cam = cam;
	g->dev = arv_camera_get_device(cam);
	g->handler = g_signal_connect(g->dev, "control-lost", G_CALLBACK(alpr_gige_control_lost), g);
	return g;
}

static int alpr_gige_start(alpr_gige *g, int nbuf, char **errmsg) {
	GError *err = NULL;
	guint payload;
	int i;
	g->stream = arv_camera_create_stream(g->cam, NULL, NULL, &err);
	if (g->stream == NULL) {
		*errmsg = alpr_take_error(err);
		return -1;
	}
	payload = arv_camera_get_payload(g->cam, &err);
	if (err != NULL) {
		*errmsg = alpr_take_error(err);
		return -1;
	}
	for (i = 0; i < nbuf; i++)
		arv_stream_push_buffer(g->stream, arv_buffer_new(payload, NULL));
	arv_camera_set_acquisition_mode(g->cam, ARV_ACQUISITION_MODE_CONTINUOUS, &err);
	if (err != NULL) {
		*errmsg = alpr_take_error(err);
		return -1;
	}
	arv_camera_start_acquisition(g->cam, &err);
	if (err != NULL) {
		*errmsg = alpr_take_error(err);
		return -1;
	}
	return 0;
}

static int alpr_gige_lost(alpr_gige *g) {
	return g_atomic_int_get(&g->lost);
}

static void alpr_gige_set_lost(alpr_gige *g) {
	g_atomic_int_set(&g->lost, 1);
}

static void alpr_gige_close(alpr_gige *g) {
	if (g->stream != NULL && !alpr_gige_lost(g))
		arv_camera_stop_acquisition(g->cam, NULL);
	g_signal_handler_disconnect(g->dev, g->handler);
	// Unreffing the stream joins its receiving thread and frees the
	// buffers it holds.
	if (g->stream != NULL)
		g_object_unref(g->stream);
	g_object_unref(g->cam);
	g_free(g);
}

// alpr_gige_copy copies n bytes of buf's payload to dst; it returns -1 if
// the payload is shorter.
static int alpr_gige_copy(ArvBuffer *buf, void *dst, size_t n) {
	size_t size = 0;
	const void *data = arv_buffer_get_data(buf, &size);
	if (data == NULL || size < n)
		return -1;
	memcpy(dst, data, n);
	return 0;
}
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"gocv.io/x/gocv"
)

// GigE tuning. Aravis' own receiving thread fills the buffers; Read pops
// them.
const (
	// gigeBuffers is how many frame buffers the stream cycles. A few are
	// enough: the Runner drains them at once and does its own queueing.
	gigeBuffers = 6
	// gigePopTimeout bounds one wait for a buffer, so Read notices ctx
	// and Close within this time.
	gigePopTimeout = 100 * time.Millisecond
	// gigeStallBase plus gigeStallFrames frame intervals without any
	// buffer (complete or not) means the camera is gone, even if Aravis
	// has not yet reported the lost heartbeat (control-lost).
	gigeStallBase   = 2 * time.Second
	gigeStallFrames = 10
)

// GigE is a Source reading a GigE Vision camera through Aravis.
//
// Config.Path names the camera as Aravis does: device ID
// ("Aravis-Fake-GV01"), vendor-serial ("Aravis-GV01"), physical (MAC)
// address or IP address ("192.168.1.20"); a bare serial number ("GV01") is
// looked up in the discovered devices. PixelFormat, Width, Height, FPS,
// ExposureUS and GainDB are set through GenICam features; a feature the
// camera lacks, or a value out of its range, does not fail Open but is
// listed by Warnings.
//
// Frames whose buffer is not complete (missing packets, timeout) are
// dropped and counted by Incomplete; they use up a Seq, so the gap shows.
// Frame.Time is the monotonic time at which Read got the buffer.
type GigE struct {
	cfg      Config
	id       string // GenICam DeviceID
	format   gigePixelFormat
	stall    time.Duration
	warnings []error

	incomplete atomic.Uint64

	mu   sync.Mutex
	g    *C.alpr_gige // nil once closed
	seq  uint64
	last time.Time // when the last buffer arrived, or acquisition began
}

var _ Source = (*GigE)(nil)

// openGigE returns a *GigE (as a Source, so a failure is a nil interface).
func openGigE(ctx context.Context, cfg Config) (Source, error) {
	g, err := openGigEDevice(cfg.Path)
	if g == nil {
		// Aravis finds a camera by ID, vendor-serial, MAC or IP address,
		// but not by bare serial number; discovery (about a second) can.
		if id, ok := gigeIDBySerial(cfg.Path); ok {
			g, err = openGigEDevice(id)
		}
	}
	if g == nil {
		return nil, fmt.Errorf("open gige camera %s: %v: %w", cfg.Path, err, ErrDevice)
	}
	if err := ctx.Err(); err != nil {
		C.alpr_gige_close(g)
		return nil, err
	}
	var msg *C.char
	s := &GigE{cfg: cfg, g: g}
	if err := s.configure(); err != nil {
		C.alpr_gige_close(g)
		return nil, err
	}
	if C.alpr_gige_start(g, gigeBuffers, &msg) != 0 {
		C.alpr_gige_close(g)
		return nil, fmt.Errorf("start gige camera %s: %s: %w", cfg.Path, takeCString(msg), ErrDevice)
	}
	s.last = time.Now()
	return s, nil
}

func openGigEDevice(id string) (*C.alpr_gige, error) {
	cid := C.CString(id)
	defer C.free(unsafe.Pointer(cid))
	var msg *C.char
	g := C.alpr_gige_open(cid, &msg)
	if g == nil {
		return nil, errors.New(takeCString(msg))
	}
	return g, nil
}

// gigeIDBySerial discovers the cameras and returns the device ID of the one
// with this serial number.
func gigeIDBySerial(serial string) (string, bool) {
	C.arv_update_device_list()
	for i := range uint(C.arv_get_n_devices()) {
		ci := C.uint(i)
		if s := C.arv_get_device_serial_nbr(ci); s != nil && C.GoString(s) == serial {
			if id := C.arv_get_device_id(ci); id != nil {
				return C.GoString(id), true
			}
		}
	}
	return "", false
}

// configure applies the config to the camera. Only an unusable pixel
// format or a broken connection fails; anything else becomes a warning.
func (s *GigE) configure() error {
	cam := s.g.cam
	var gerr *C.GError
	warn := func(format string, args ...any) {
		s.warnings = append(s.warnings, fmt.Errorf("gige camera %s: "+format, append([]any{s.cfg.Path}, args...)...))
	}
	if id := C.arv_camera_get_device_id(cam, &gerr); id != nil {
		s.id = C.GoString(id)
	} else if err := takeGError(gerr); err != nil {
		return fmt.Errorf("open gige camera %s: device id: %v: %w", s.cfg.Path, err, ErrDevice)
	}
	gerr = nil

	if s.cfg.PixelFormat != "" {
		want, _ := lookupGigEPixelFormat(s.cfg.PixelFormat) // Validate checked it
		C.arv_camera_set_pixel_format(cam, C.ArvPixelFormat(want.code), &gerr)
		if err := takeGError(gerr); err != nil {
			warn("pixel format %s: %v; keeping the camera's", want.name, err)
		}
		gerr = nil
	}
	if s.cfg.Width > 0 || s.cfg.Height > 0 {
		var x, y, w, h C.gint
		C.arv_camera_get_region(cam, &x, &y, &w, &h, &gerr)
		if err := takeGError(gerr); err != nil {
			warn("region: %v", err)
		} else {
			if s.cfg.Width > 0 {
				w = C.gint(s.cfg.Width)
			}
			if s.cfg.Height > 0 {
				h = C.gint(s.cfg.Height)
			}
			gerr = nil
			C.arv_camera_set_region(cam, 0, 0, w, h, &gerr)
			if err := takeGError(gerr); err != nil {
				warn("size %dx%d: %v", int(w), int(h), err)
			}
		}
		gerr = nil
	}
	if s.cfg.ExposureUS > 0 {
		s.setFloat("exposure", s.cfg.ExposureUS, "µs", warn,
			func(e **C.GError) C.gboolean { return C.arv_camera_is_exposure_time_available(cam, e) },
			func(e **C.GError) C.gboolean { return C.arv_camera_is_exposure_auto_available(cam, e) },
			func(e **C.GError) { C.arv_camera_set_exposure_time_auto(cam, C.ARV_AUTO_OFF, e) },
			func(lo, hi *C.double, e **C.GError) { C.arv_camera_get_exposure_time_bounds(cam, lo, hi, e) },
			func(v C.double, e **C.GError) { C.arv_camera_set_exposure_time(cam, v, e) })
	}
	if s.cfg.GainDB > 0 {
		s.setFloat("gain", s.cfg.GainDB, "dB", warn,
			func(e **C.GError) C.gboolean { return C.arv_camera_is_gain_available(cam, e) },
			func(e **C.GError) C.gboolean { return C.arv_camera_is_gain_auto_available(cam, e) },
			func(e **C.GError) { C.arv_camera_set_gain_auto(cam, C.ARV_AUTO_OFF, e) },
			func(lo, hi *C.double, e **C.GError) { C.arv_camera_get_gain_bounds(cam, lo, hi, e) },
			func(v C.double, e **C.GError) { C.arv_camera_set_gain(cam, v, e) })
	}
	if s.cfg.FPS > 0 {
		s.setFloat("frame rate", s.cfg.FPS, "Hz", warn,
			func(e **C.GError) C.gboolean { return C.arv_camera_is_frame_rate_available(cam, e) },
			nil, nil,
			func(lo, hi *C.double, e **C.GError) { C.arv_camera_get_frame_rate_bounds(cam, lo, hi, e) },
			func(v C.double, e **C.GError) { C.arv_camera_set_frame_rate(cam, v, e) })
	}

	// Whatever was asked, convert what the camera will actually send.
	code := C.arv_camera_get_pixel_format(cam, &gerr)
	if err := takeGError(gerr); err != nil {
		return fmt.Errorf("open gige camera %s: read pixel format: %v: %w", s.cfg.Path, err, ErrDevice)
	}
	f, ok := gigePixelFormatByCode(uint32(code))
	if !ok {
		return fmt.Errorf("open gige camera %s: camera sends pixel format 0x%08x: %w", s.cfg.Path, uint32(code), ErrPixelFormat)
	}
	s.format = f

	interval := time.Second
	if C.arv_camera_is_frame_rate_available(cam, nil) != 0 {
		if fps := float64(C.arv_camera_get_frame_rate(cam, nil)); fps > 0 && !math.IsInf(fps, 0) {
			interval = time.Duration(float64(time.Second) / fps)
		}
	}
	s.stall = gigeStallBase + gigeStallFrames*interval
	return nil
}

// setFloat sets one float feature, turning its "auto" mode off first when
// the camera has one, clamping to the camera's bounds and warning instead of
// failing.
func (s *GigE) setFloat(what string, v float64, unit string, warn func(string, ...any),
	available, autoAvailable func(**C.GError) C.gboolean, autoOff func(**C.GError),
	bounds func(lo, hi *C.double, e **C.GError), set func(C.double, **C.GError)) {
	var gerr *C.GError
	ok := available(&gerr) != 0
	if err := takeGError(gerr); err != nil || !ok {
		if err == nil {
			err = errors.New("camera has no such feature")
		}
		warn("%s %v %s not set: %v", what, v, unit, err)
		return
	}
	if autoAvailable != nil {
		gerr = nil
		ok := autoAvailable(&gerr) != 0
		_ = takeGError(gerr)
		if ok {
			gerr = nil
			autoOff(&gerr)
			if err := takeGError(gerr); err != nil {
				warn("%s auto off: %v", what, err)
			}
		}
	}
	gerr = nil
	var lo, hi C.double
	bounds(&lo, &hi, &gerr)
	if err := takeGError(gerr); err == nil && hi >= lo {
		if c := min(max(v, float64(lo)), float64(hi)); c != v {
			warn("%s %v %s out of range [%v, %v]; using %v", what, v, unit, float64(lo), float64(hi), c)
			v = c
		}
	}
	gerr = nil
	set(C.double(v), &gerr)
	if err := takeGError(gerr); err != nil {
		warn("%s %v %s: %v", what, v, unit, err)
	}
}

// DeviceID is the camera's GenICam DeviceID (often its serial number).
func (s *GigE) DeviceID() string { return s.id }

// PixelFormat is the GenICam name of the format the camera sends.
func (s *GigE) PixelFormat() string { return s.format.name }

// Warnings lists the settings Open could not apply (a feature the camera
// lacks, a value out of range). The Runner logs them after each open.
func (s *GigE) Warnings() []error { return s.warnings }

// Incomplete is how many frames were dropped because their buffer was not
// complete (missing packets, timeout, size mismatch). It is safe to call
// from any goroutine.
func (s *GigE) Incomplete() uint64 { return s.incomplete.Load() }

// Read returns the next complete frame, converted to BGR. It returns
// ctx.Err() within about 100 ms of ctx ending, and an error wrapping
// ErrDevice when the camera is lost (heartbeat lost, or no buffer for a few
// seconds) so the Runner reopens it.
func (s *GigE) Read(ctx context.Context) (Frame, error) {
	for {
		if err := ctx.Err(); err != nil {
			return Frame{}, err
		}
		f, done, err := s.pop()
		if done {
			return f, err
		}
	}
}

// pop waits up to gigePopTimeout for one buffer. done reports that Read
// should return f and err.
func (s *GigE) pop() (f Frame, done bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.g == nil {
		return Frame{}, true, fmt.Errorf("read gige camera %s: %w", s.cfg.Path, ErrClosed)
	}
	if C.alpr_gige_lost(s.g) != 0 {
		return Frame{}, true, fmt.Errorf("read gige camera %s: control lost: %w", s.cfg.Path, ErrDevice)
	}
	buf := C.arv_stream_timeout_pop_buffer(s.g.stream, C.guint64(gigePopTimeout/time.Microsecond))
	now := time.Now()
	if buf == nil {
		if d := now.Sub(s.last); d > s.stall {
			C.alpr_gige_set_lost(s.g)
			return Frame{}, true, fmt.Errorf("read gige camera %s: no frame for %v: %w", s.cfg.Path, d.Round(time.Millisecond), ErrDevice)
		}
		return Frame{}, false, nil
	}
	defer C.arv_stream_push_buffer(s.g.stream, buf)
	s.last = now
	s.seq++
	if C.arv_buffer_get_status(buf) != C.ARV_BUFFER_STATUS_SUCCESS {
		s.incomplete.Add(1)
		return Frame{}, false, nil
	}
	img, err := s.convert(buf)
	if err != nil {
		return Frame{}, true, fmt.Errorf("read gige camera %s: frame %d: %v: %w", s.cfg.Path, s.seq, err, ErrBadFrame)
	}
	return Frame{Img: img, Seq: s.seq, Time: now, Camera: s.cfg.Name}, true, nil
}

func (s *GigE) convert(buf *C.ArvBuffer) (gocv.Mat, error) {
	if pt := C.arv_buffer_get_payload_type(buf); pt != C.ARV_BUFFER_PAYLOAD_TYPE_IMAGE &&
		pt != C.ARV_BUFFER_PAYLOAD_TYPE_EXTENDED_CHUNK_DATA {
		return gocv.Mat{}, fmt.Errorf("payload type %d is not an image", int(pt))
	}
	code := uint32(C.arv_buffer_get_image_pixel_format(buf))
	f, ok := gigePixelFormatByCode(code)
	if !ok {
		return gocv.Mat{}, fmt.Errorf("pixel format 0x%08x: %w", code, ErrPixelFormat)
	}
	w, h := int(C.arv_buffer_get_image_width(buf)), int(C.arv_buffer_get_image_height(buf))
	if w <= 0 || h <= 0 {
		return gocv.Mat{}, fmt.Errorf("image size %dx%d", w, h)
	}
	raw := gocv.NewMatWithSize(h, w, f.raw)
	defer raw.Close()
	p, err := raw.DataPtrUint8()
	if err != nil {
		return gocv.Mat{}, err
	}
	if C.alpr_gige_copy(buf, unsafe.Pointer(&p[0]), C.size_t(w*h*f.bytesPerPixel())) != 0 {
		return gocv.Mat{}, fmt.Errorf("payload shorter than %dx%d %s", w, h, f.name)
	}
	return f.toBGR(raw), nil
}

// Close stops acquisition and releases the stream and the camera, once. It
// is idempotent and safe while a Read waits (that Read then returns
// ErrClosed).
//
// Releasing a camera that is gone takes Aravis about ten seconds of
// control-channel writes that time out (stream teardown, leaving control).
// So that the Runner can reopen the camera meanwhile, Close of a lost
// camera returns at once and releases it in the background.
func (s *GigE) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.g == nil {
		return nil
	}
	g := s.g
	s.g = nil
	if C.alpr_gige_lost(g) != 0 {
		gigeReleasing.Add(1)
		go func() {
			defer gigeReleasing.Done()
			C.alpr_gige_close(g)
		}()
		return nil
	}
	C.alpr_gige_close(g)
	return nil
}

// gigeReleasing counts the lost cameras being released in the background.
var gigeReleasing sync.WaitGroup

func takeCString(p *C.char) string {
	if p == nil {
		return "unknown error"
	}
	defer C.g_free(C.gpointer(p))
	return C.GoString(p)
}

// takeGError converts and frees a GError; nil stays nil.
func takeGError(e *C.GError) error {
	if e == nil {
		return nil
	}
	defer C.g_error_free(e)
	return errors.New(C.GoString(e.message))
}
