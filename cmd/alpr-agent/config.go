package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/alpr-agent/alpr-agent/boards"
	"github.com/alpr-agent/alpr-agent/capture"
	"github.com/alpr-agent/alpr-agent/hotlist"
	"github.com/alpr-agent/alpr-agent/recognize"
	"github.com/alpr-agent/alpr-agent/spool"
)

// Config is the agent's one YAML file. Defaults come from DefaultConfig,
// then the file, then ALPR_* environment overrides, then Validate.
type Config struct {
	Device    string          `yaml:"device"`
	Log       LogConfig       `yaml:"log"`
	Cameras   []CameraConfig  `yaml:"cameras"`
	Recognize RecognizeConfig `yaml:"recognize"`
	Tracker   TrackerConfig   `yaml:"tracker"`
	GNSS      GNSSConfig      `yaml:"gnss"`
	Spool     SpoolConfig     `yaml:"spool"`
	Retention RetentionConfig `yaml:"retention"`
	Uplink    UplinkConfig    `yaml:"uplink"`
	Privacy   PrivacyConfig   `yaml:"privacy"`
	Hotlist   HotlistConfig   `yaml:"hotlist"`
	Remote    RemoteConfig    `yaml:"remote_config"`
	Audit     AuditConfig     `yaml:"audit"`
	Board     BoardConfig     `yaml:"board"`
	Diag      DiagConfig      `yaml:"diag"`
}

// HotlistConfig: signed hotlists arrive retained on alpr/v1/{device}/hotlist
// and are matched on the device.
type HotlistConfig struct {
	// PublicKeyFile holds the Ed25519 public key(s) lists and remote config
	// must be signed with. "" = no hotlist and no remote config.
	PublicKeyFile string `yaml:"public_key_file"`
	// Path keeps the last accepted list (default: hotlist.json beside the
	// spool) so a unit booting offline still has it.
	Path     string `yaml:"path"`
	MaxBytes int    `yaml:"max_bytes"`
	// MaxDistance is the fuzzy budget: a swap between confusable
	// characters (O/0, B/8, ...) costs 0.25, any other edit 1. 0 = exact.
	MaxDistance float64       `yaml:"max_distance"`
	ClockSkew   time.Duration `yaml:"clock_skew"`
}

// RemoteConfig: signed config patches arrive retained on
// alpr/v1/{device}/config (same key as the hotlist). Only the keys in
// remotePatch (guard.go) may change remotely; a patch with any other key is refused.
type RemoteConfig struct {
	Path     string `yaml:"path"` // default: remote-config.json beside the spool
	MaxBytes int    `yaml:"max_bytes"`
}

// AuditConfig: the append-only, hash-chained log of hotlist and config
// changes and of diag requests that returned plate data. Always on.
type AuditConfig struct {
	Path        string `yaml:"path"`          // default: audit.log beside the spool
	HMACKeyFile string `yaml:"hmac_key_file"` // optional: chain with HMAC-SHA256 under this key
}

// DiagConfig sets how often health is logged and sent on the diag topic,
// and where the status page, /status.json and /metrics listen.
type DiagConfig struct {
	Interval time.Duration `yaml:"interval"`
	// Listen is the HTTP address of the diag listener ("" = off). Off
	// loopback it needs Username and Password (basic auth).
	Listen   string `yaml:"listen"`
	Username string `yaml:"username"`
	Password string `yaml:"password"`
}

// LogConfig selects the log format and level.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // json (devices) or text
}

// CameraConfig is one capture source; capture.Config documents each field.
type CameraConfig struct {
	Name        string                `yaml:"name"`
	Kind        string                `yaml:"kind"` // v4l2, gige, rtsp, gstreamer, file, images
	Path        string                `yaml:"path"` // device, camera ID/address, URL, pipeline, file or folder
	Width       int                   `yaml:"width"`
	Height      int                   `yaml:"height"`
	FPS         float64               `yaml:"fps"`
	PixelFormat string                `yaml:"pixel_format"` // GigE: Mono8, BayerRG8...; V4L2: MJPG, YUYV
	ExposureUS  float64               `yaml:"exposure_us"`
	GainDB      float64               `yaml:"gain_db"`   // GigE
	V4L2Gain    float64               `yaml:"v4l2_gain"` // V4L2, driver units
	Stream      capture.StreamOptions `yaml:"stream"`    // rtsp, gstreamer
	Realtime    *bool                 `yaml:"realtime"`  // file/images: pace at fps (default true)
	Loop        bool                  `yaml:"loop"`
	Queue       int                   `yaml:"queue"`  // frames buffered between capture and recognition
	Motion      MotionConfig          `yaml:"motion"` // motion gate in front of recognition
}

// MotionConfig is a camera's motion gate: frames without motion in the
// zone are not recognized. capture.MotionConfig documents the keys (zone,
// mask, threshold, pixel_delta, downscale, keepalive, hold, learn).
type MotionConfig struct {
	Enabled              *bool `yaml:"enabled"` // default true
	capture.MotionConfig `yaml:",inline"`
}

// enabled says whether the camera's frames go through a motion gate.
func (m MotionConfig) enabled() bool { return m.Enabled == nil || *m.Enabled }

// captureConfig is the camera as the capture package takes it.
func (c CameraConfig) captureConfig() capture.Config {
	cc := capture.Config{Name: c.Name, Kind: c.Kind, Path: c.Path, Width: c.Width, Height: c.Height, FPS: c.FPS,
		PixelFormat: c.PixelFormat, ExposureUS: c.ExposureUS, GainDB: c.GainDB, V4L2Gain: c.V4L2Gain, Stream: c.Stream, Loop: c.Loop}
	if c.Realtime != nil {
		cc.Realtime = *c.Realtime
	}
	return cc
}

// RecognizeConfig locates the models and sets the reader's region.
type RecognizeConfig struct {
	ModelDir   string `yaml:"model_dir"`
	RuntimeLib string `yaml:"runtime_lib"`
	Threads    int    `yaml:"threads"`
	Region     string `yaml:"region"`
	DetMaxSide int    `yaml:"det_max_side"`
	// Formats, when set, replace the region's plate formats: regular
	// expressions over A-Z0-9 (e.g. "^[A-Z]{3}[0-9]{4}$"). They rank the
	// candidates and fix only the look-alike characters a format demands.
	Formats []string `yaml:"formats"`
}

// TrackerConfig decides when a vehicle pass ends.
type TrackerConfig struct {
	MaxGap      time.Duration `yaml:"max_gap"`
	MaxDuration time.Duration `yaml:"max_duration"`
	MinFrames   int           `yaml:"min_frames"`
}

// GNSSConfig is the receiver's serial port.
type GNSSConfig struct {
	Port       string        `yaml:"port"` // "" = no receiver: reads carry position null
	Baud       int           `yaml:"baud"` // 0 = detect among 4800, 9600, 38400, 115200
	StaleAfter time.Duration `yaml:"stale_after"`
}

// SpoolConfig is the durable queue.
type SpoolConfig struct {
	Path     string `yaml:"path"`
	MaxBytes int64  `yaml:"max_bytes"`
	// FullPolicy is what a full spool (max_bytes or a full disk) does with
	// a new read: "refuse" it, or "drop_oldest" non-hit reads to make room.
	// Hotlist hits are never dropped.
	FullPolicy string `yaml:"full_policy"`
	// KeyFile is the installer-provisioned master key (32 raw bytes or 64
	// hex characters, mode 0600). Set: reads are encrypted at rest with
	// per-period keys shredded when the period's retention ends. "" = off.
	KeyFile string `yaml:"key_file"`
	// KeyPeriod is the span of reads one data key covers.
	KeyPeriod time.Duration `yaml:"key_period"`
}

// RetentionConfig bounds how long a read may stay on the device.
type RetentionConfig struct {
	MaxAge time.Duration `yaml:"max_age"`
}

// UplinkConfig is the MQTT session.
type UplinkConfig struct {
	Broker      string        `yaml:"broker"`
	Username    string        `yaml:"username"`
	Password    string        `yaml:"password"`
	CAFile      string        `yaml:"ca_file"`
	CertFile    string        `yaml:"cert_file"`
	KeyFile     string        `yaml:"key_file"`
	Insecure    bool          `yaml:"insecure"`
	Batch       int           `yaml:"batch"`
	Inflight    int           `yaml:"inflight"`
	ResendAfter time.Duration `yaml:"resend_after"`
	ReceiptMode string        `yaml:"receipt_mode"` // receipt (default) or puback
	// ReceiptAlarmAfter raises the uplink alarm when published reads have
	// waited this long without any receipt (a broker ACL silently dropping
	// them, a central receiver down). 0 = max(2 min, 2 x resend_after).
	ReceiptAlarmAfter time.Duration `yaml:"receipt_alarm_after"`
	// ResendBackoffMax caps the re-send interval, which doubles from
	// resend_after while no receipt comes at all. 0 = 10 minutes.
	ResendBackoffMax time.Duration `yaml:"resend_backoff_max"`
}

// PrivacyConfig holds what the device keeps and sends.
type PrivacyConfig struct {
	Crops bool `yaml:"crops"` // include the plate crop in each read
	// FullFrames includes the whole best frame in each read (stored in the
	// spool and sent). Off by default: crops only.
	FullFrames bool `yaml:"full_frames"`
	// HitsOnly keeps and sends only reads that match the hotlist; other
	// reads are counted, nothing more. Needs hotlist.public_key_file.
	HitsOnly bool `yaml:"hits_only"`
}

// BoardConfig selects the board profile and its peripherals.
type BoardConfig struct {
	Profile         string        `yaml:"profile"` // none, auto, rpi4, rpi5
	SysfsRoot       string        `yaml:"sysfs_root"`
	Pins            PinsConfig    `yaml:"pins"`
	IRMode          string        `yaml:"ir_mode"` // on (while capturing), strobe (per frame), off
	IRActiveLow     bool          `yaml:"ir_active_low"`
	Ignition        bool          `yaml:"ignition"` // cruisers: ignition off for ignition_hold_off stops the agent
	IgnitionHoldOff time.Duration `yaml:"ignition_hold_off"`
	ThrottleAboveC  float64       `yaml:"throttle_above_c"` // CPU temperature above which frames are skipped
	ThrottleFactor  float64       `yaml:"throttle_factor"`  // share of frames recognized while throttled
}

// PinsConfig overrides the profile's pin map ("-" = not fitted).
type PinsConfig struct {
	IR        string `yaml:"ir"`
	StatusLED string `yaml:"status_led"`
	ErrorLED  string `yaml:"error_led"`
	Ignition  string `yaml:"ignition"`
}

// boardConfig maps the file's keys onto the boards package's defaults.
func (c BoardConfig) boardConfig() boards.Config {
	bc := boards.DefaultConfig()
	bc.Profile, bc.SysfsRoot, bc.IRActiveLow, bc.Ignition = c.Profile, c.SysfsRoot, c.IRActiveLow, c.Ignition
	bc.Pins = boards.Pins{IR: c.Pins.IR, StatusLED: c.Pins.StatusLED, ErrorLED: c.Pins.ErrorLED, Ignition: c.Pins.Ignition}
	if c.IRMode != "" {
		bc.IRMode = c.IRMode
	}
	if c.IgnitionHoldOff > 0 {
		bc.IgnitionHoldOff = c.IgnitionHoldOff
	}
	if c.ThrottleAboveC > 0 {
		bc.ThrottleAboveC = c.ThrottleAboveC
	}
	if c.ThrottleFactor > 0 {
		bc.ThrottleFactor = c.ThrottleFactor
	}
	return bc
}

// DefaultConfig is a device with no cameras configured yet.
func DefaultConfig() Config {
	return Config{
		Log:       LogConfig{Level: "info", Format: "json"},
		Recognize: RecognizeConfig{ModelDir: recognize.DefaultModelDir, RuntimeLib: recognize.DefaultLibPath, Threads: 1, Region: "us", DetMaxSide: recognize.DefaultDetMaxSide},
		Tracker:   TrackerConfig{MaxGap: 1500 * time.Millisecond, MaxDuration: 20 * time.Second, MinFrames: 2},
		GNSS:      GNSSConfig{Baud: 0, StaleAfter: 3 * time.Second},
		Spool:     SpoolConfig{Path: "/var/lib/alpr-agent/spool.db", FullPolicy: string(spool.FullRefuse), KeyPeriod: time.Hour},
		Retention: RetentionConfig{MaxAge: 72 * time.Hour},
		Uplink:    UplinkConfig{Batch: 128, Inflight: 512, ResendAfter: 30 * time.Second, ReceiptMode: "receipt"},
		Privacy:   PrivacyConfig{Crops: true},
		Hotlist:   HotlistConfig{MaxBytes: hotlist.DefaultMaxBytes, MaxDistance: hotlist.DefaultMaxDistance, ClockSkew: hotlist.DefaultClockSkew},
		Remote:    RemoteConfig{MaxBytes: hotlist.DefaultConfigMaxBytes},
		Board:     BoardConfig{Profile: "none", SysfsRoot: "/sys"},
		Diag:      DiagConfig{Interval: time.Minute, Listen: "127.0.0.1:8089"},
	}
}

// LoadConfig reads path over the defaults. An unknown key is an error that
// names it and its line.
func LoadConfig(path string) (Config, error) {
	cfg := DefaultConfig()
	raw, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("read config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return cfg, fmt.Errorf("config %s: %s", path, cleanYAMLError(err))
	}
	if err := cfg.applyEnv(os.LookupEnv); err != nil {
		return cfg, err
	}
	for i := range cfg.Cameras {
		c := &cfg.Cameras[i]
		if c.Queue == 0 {
			c.Queue = 4
		}
		if c.Realtime == nil {
			t := true
			c.Realtime = &t
		}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

var yamlFieldRE = regexp.MustCompile(`line (\d+): field (\S+) not found in type main\.(\w+)`)

// cleanYAMLError turns yaml.v3's Go type names into the config's key names.
func cleanYAMLError(err error) string {
	msg := err.Error()
	msg = yamlFieldRE.ReplaceAllString(msg, "line $1: unknown key \"$2\" (in $3)")
	msg = strings.ReplaceAll(msg, "yaml: ", "")
	return msg
}

// applyEnv applies ALPR_* overrides for the values an installer most often
// sets per unit without editing the file.
func (c *Config) applyEnv(lookup func(string) (string, bool)) error {
	str := map[string]*string{
		"ALPR_DEVICE":        &c.Device,
		"ALPR_UPLINK_BROKER": &c.Uplink.Broker,
		"ALPR_GNSS_PORT":     &c.GNSS.Port,
		"ALPR_SPOOL_PATH":    &c.Spool.Path,
		"ALPR_MODEL_DIR":     &c.Recognize.ModelDir,
		"ALPR_ORT_LIB":       &c.Recognize.RuntimeLib,
		"ALPR_LOG_LEVEL":     &c.Log.Level,
	}
	for k, p := range str {
		if v, ok := lookup(k); ok && v != "" {
			*p = v
		}
	}
	return nil
}

var deviceRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// Validate returns every bad field, each named by its YAML key.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if !deviceRE.MatchString(c.Device) {
		bad("device", "%q must be 1-64 letters, digits, '.', '_' or '-' (it is the MQTT client ID and topic level)", c.Device)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "%q is not one of debug, info, warn, error", c.Log.Level)
	}
	switch c.Log.Format {
	case "json", "text":
	default:
		bad("log.format", "%q is not json or text", c.Log.Format)
	}
	if len(c.Cameras) == 0 {
		bad("cameras", "at least one camera is needed")
	}
	names := map[string]bool{}
	for i, cam := range c.Cameras {
		key := fmt.Sprintf("cameras[%d]", i)
		if cam.Name == "" || strings.ContainsAny(cam.Name, "/+#") {
			bad(key+".name", "%q must be non-empty without / + #", cam.Name)
		}
		if names[cam.Name] {
			bad(key+".name", "%q is used twice", cam.Name)
		}
		names[cam.Name] = true
		if err := cam.captureConfig().Validate(); err != nil {
			bad(key, "%v", err)
		}
		if cam.Queue < 0 {
			bad(key+".queue", "must not be negative")
		}
		if err := cam.Motion.MotionConfig.Validate(); err != nil {
			bad(key+".motion", "%v", err)
		}
		if m := cam.Motion.Mask; m != "" && cam.Motion.enabled() {
			if _, err := os.Stat(m); err != nil {
				bad(key+".motion.mask", "%v", err)
			}
		}
	}
	if c.Recognize.Threads < 1 || c.Recognize.Threads > 16 {
		bad("recognize.threads", "%d is not in 1..16", c.Recognize.Threads)
	}
	switch c.Recognize.Region {
	case "us", "eu", "br", "":
	default:
		bad("recognize.region", "%q is not us, eu or br", c.Recognize.Region)
	}
	if c.Recognize.DetMaxSide < 320 || c.Recognize.DetMaxSide > 4096 {
		bad("recognize.det_max_side", "%d is not in 320..4096", c.Recognize.DetMaxSide)
	}
	for i, f := range c.Recognize.Formats {
		if _, err := regexp.Compile(f); err != nil {
			bad(fmt.Sprintf("recognize.formats[%d]", i), "%q: %v", f, err)
		}
	}
	if c.Tracker.MaxGap <= 0 {
		bad("tracker.max_gap", "must be positive")
	}
	if c.Tracker.MaxDuration <= c.Tracker.MaxGap {
		bad("tracker.max_duration", "must be longer than tracker.max_gap")
	}
	if c.Tracker.MinFrames < 1 {
		bad("tracker.min_frames", "must be at least 1")
	}
	if c.GNSS.Port != "" {
		switch c.GNSS.Baud {
		case 0, 4800, 9600, 19200, 38400, 57600, 115200, 230400:
		default:
			bad("gnss.baud", "%d is not a standard rate (0 detects it)", c.GNSS.Baud)
		}
	}
	if c.GNSS.StaleAfter <= 0 {
		bad("gnss.stale_after", "must be positive")
	}
	if c.Spool.Path == "" {
		bad("spool.path", "must be set")
	}
	if c.Spool.MaxBytes < 0 {
		bad("spool.max_bytes", "must not be negative")
	}
	if _, err := spool.ParseFullPolicy(c.Spool.FullPolicy); err != nil {
		bad("spool.full_policy", "%q: want refuse or drop_oldest", c.Spool.FullPolicy)
	}
	if c.Spool.KeyPeriod <= 0 {
		bad("spool.key_period", "must be positive")
	}
	if c.Hotlist.MaxBytes < 1 {
		bad("hotlist.max_bytes", "must be positive")
	}
	if c.Hotlist.MaxDistance < 0 || c.Hotlist.MaxDistance > 2 {
		bad("hotlist.max_distance", "%v: want 0 (exact) to 2", c.Hotlist.MaxDistance)
	}
	if c.Hotlist.ClockSkew < 0 {
		bad("hotlist.clock_skew", "must not be negative")
	}
	if c.Remote.MaxBytes < 1 {
		bad("remote_config.max_bytes", "must be positive")
	}
	if c.Privacy.HitsOnly && c.Hotlist.PublicKeyFile == "" {
		bad("privacy.hits_only", "needs hotlist.public_key_file: without a signed hotlist every read would be discarded")
	}
	if c.Retention.MaxAge <= 0 {
		bad("retention.max_age", "must be positive: no read may stay on the device forever")
	}
	if c.Uplink.Broker == "" {
		bad("uplink.broker", "must be set (ssl://host:8883)")
	} else if strings.HasPrefix(c.Uplink.Broker, "tcp://") && !c.Uplink.Insecure {
		bad("uplink.broker", "%q is plaintext; use ssl:// or set uplink.insecure: true (loopback demos only)", c.Uplink.Broker)
	}
	if c.Uplink.Batch < 1 {
		bad("uplink.batch", "must be at least 1")
	}
	if c.Uplink.Inflight < c.Uplink.Batch {
		bad("uplink.inflight", "must be at least uplink.batch")
	}
	if c.Uplink.ResendAfter <= 0 {
		bad("uplink.resend_after", "must be positive")
	}
	if c.Uplink.ResendBackoffMax < 0 {
		bad("uplink.resend_backoff_max", "must not be negative")
	}
	if c.Uplink.ReceiptAlarmAfter != 0 && c.Uplink.ReceiptAlarmAfter < c.Uplink.ResendAfter {
		bad("uplink.receipt_alarm_after", "%v is shorter than uplink.resend_after %v (one re-send is normal)", c.Uplink.ReceiptAlarmAfter, c.Uplink.ResendAfter)
	}
	switch c.Uplink.ReceiptMode {
	case "receipt", "puback":
	default:
		bad("uplink.receipt_mode", "%q is not receipt or puback", c.Uplink.ReceiptMode)
	}
	if c.Diag.Interval < time.Second {
		bad("diag.interval", "%v is shorter than 1s", c.Diag.Interval)
	}
	for _, e := range c.Diag.validate() {
		bad(e.key, "%s", e.msg)
	}
	if err := c.Board.boardConfig().Validate(); err != nil {
		bad("board", "%v", err)
	}
	return errors.Join(errs...)
}

// statePath is name in the spool's folder (the unit's state directory)
// unless p is set.
func statePath(c Config, p, name string) string {
	if p != "" {
		return p
	}
	return filepath.Join(filepath.Dir(c.Spool.Path), name)
}
