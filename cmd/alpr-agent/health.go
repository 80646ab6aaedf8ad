package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/alpr-agent/alpr-agent/boards"
	"github.com/alpr-agent/alpr-agent/capture"
	"github.com/alpr-agent/alpr-agent/uplink"
)

// Health is the agent's state as a technician reads it: published on the
// MQTT diag topic and logged, every diag interval.
type Health struct {
	V       int       `json:"v"`
	Device  string    `json:"device"`
	Time    time.Time `json:"time"`
	Version string    `json:"version"`
	Reads   int64     `json:"reads"`
	// Throttled counts frames skipped because the CPU ran hot; Throttle
	// is the share of frames recognized now (1 = all).
	Throttled int64                `json:"throttled_frames"`
	Throttle  float64              `json:"throttle"`
	Cameras   []CameraHealth       `json:"cameras"`
	GNSS      GNSSHealth           `json:"gnss"`
	Spool     SpoolHealth          `json:"spool"`
	Privacy   PrivacyHealth        `json:"privacy"`
	Uplink    UplinkHealth         `json:"uplink"`
	Temps     []boards.Temperature `json:"temperatures"`
	Board     []boards.Peripheral  `json:"peripherals"`
}

// CameraHealth is one camera's capture counters.
type CameraHealth struct {
	capture.Stats
	LastFrameAgeMS int64 `json:"last_frame_age_ms"` // -1 before the first frame
	// Motion counts the motion gate's decisions; absent when it is off.
	Motion *capture.MotionStats `json:"motion,omitempty"`
}

// GNSSHealth is the receiver's state.
type GNSSHealth struct {
	Enabled      bool    `json:"enabled"`
	PortOpen     bool    `json:"port_open"`
	HasFix       bool    `json:"has_fix"`
	FixAgeMS     int64   `json:"fix_age_ms"` // -1 without a fix
	Mode         int     `json:"mode,omitempty"`
	Sats         int     `json:"sats,omitempty"`
	HDOP         float64 `json:"hdop,omitempty"`
	BadSentences uint64  `json:"bad_sentences"`
	LastError    string  `json:"last_error,omitempty"`
}

// SpoolHealth is the queue's depth.
type SpoolHealth struct {
	Records     int    `json:"records"`
	Bytes       int64  `json:"bytes"`
	OldestAgeMS int64  `json:"oldest_age_ms"` // 0 when empty
	Full        bool   `json:"full"`
	FullCause   string `json:"full_cause,omitempty"`
	Refused     uint64 `json:"refused"`
	Dropped     uint64 `json:"dropped"` // non-hit reads dropped by full_policy drop_oldest
	Expired     uint64 `json:"expired"` // reads removed by retention
	SetAside    int    `json:"set_aside"`
	Encrypted   bool   `json:"encrypted"`
	Keys        int    `json:"keys"`
	Shredded    uint64 `json:"shredded"`
	// MovedAside is where a damaged spool file was moved at start.
	MovedAside       string `json:"moved_aside,omitempty"`
	MovedAsideReason string `json:"moved_aside_reason,omitempty"`
	// PurgedAside lists moved-aside spool files deleted since start
	// because retention had ended for every read in them.
	PurgedAside []string `json:"purged_aside,omitempty"`
	LastError   string   `json:"last_error,omitempty"`
	// NotStored counts reads lost because the spool refused them.
	NotStored uint64 `json:"not_stored"`
}

// UplinkHealth is the MQTT session's state.
type UplinkHealth struct {
	Connected     bool   `json:"connected"`
	InFlight      int    `json:"in_flight"`
	Reconnects    uint64 `json:"reconnects"`
	Acked         uint64 `json:"acked"`
	LastReceiptMS int64  `json:"last_receipt_age_ms"` // -1 before the first receipt
	LastError     string `json:"last_error,omitempty"`
	// Alarm says why, when published reads have waited
	// uplink.receipt_alarm_after without a receipt; AlarmAgeMS since when.
	Alarm      string `json:"alarm,omitempty"`
	AlarmAgeMS int64  `json:"alarm_age_ms,omitempty"`
	// ReceiptLatency: publish to receipt, seconds, uplink.LatencyBuckets.
	ReceiptLatency uplink.Histogram `json:"receipt_latency"`
	// ResendEveryMS: how long a published read now waits for its receipt
	// before it is re-sent (uplink.resend_after, longer while no receipt
	// comes at all).
	ResendEveryMS int64 `json:"resend_every_ms"`
}

func ageMS(now, t time.Time) int64 {
	if t.IsZero() {
		return -1
	}
	return now.Sub(t).Milliseconds()
}

// health gathers every stage's state; each call reads counters only.
func (a *Agent) health(runners []*capture.Runner) Health {
	now := time.Now()
	h := Health{V: 1, Device: a.cfg.Device, Time: now.UTC(), Version: version, Reads: a.reads.Load(),
		Throttled: a.throttled.Load(), Throttle: a.board.Throttle()}
	for _, r := range runners {
		st := r.Stats()
		ch := CameraHealth{Stats: st, LastFrameAgeMS: ageMS(now, st.LastFrame)}
		if g := a.gates[st.Camera]; g != nil {
			ms := g.Stats()
			ch.Motion = &ms
		}
		h.Cameras = append(h.Cameras, ch)
	}
	gs := a.gnss.Status()
	h.GNSS = GNSSHealth{Enabled: gs.Enabled, PortOpen: gs.PortOpen, HasFix: gs.HasFix, FixAgeMS: ageMS(now, gs.LastFixAt),
		BadSentences: gs.BadSentences, LastError: gs.LastError}
	if gs.HasFix {
		h.GNSS.Mode, h.GNSS.Sats, h.GNSS.HDOP = gs.LastFix.Mode, gs.LastFix.Sats, gs.LastFix.HDOP
	}
	ss := a.spool.Stats()
	h.Spool = SpoolHealth{Records: ss.Records, Bytes: ss.Bytes, Full: ss.Full, FullCause: ss.FullCause, Refused: ss.Refused,
		Dropped: ss.Dropped, Expired: ss.Expired, SetAside: ss.SetAside, Encrypted: ss.Encrypted, Keys: ss.Keys,
		Shredded: ss.Shredded, MovedAside: ss.MovedAside, MovedAsideReason: ss.MovedAsideReason, PurgedAside: ss.PurgedAside, LastError: ss.LastError,
		NotStored: a.notStored.Load()}
	if !ss.Oldest.IsZero() {
		h.Spool.OldestAgeMS = now.Sub(ss.Oldest).Milliseconds()
	}
	if a.guard != nil {
		h.Privacy = a.guard.health()
	}
	us := a.uplink.Status()
	h.Uplink = UplinkHealth{Connected: us.Connected, InFlight: us.InFlight, Reconnects: us.Reconnects, Acked: us.Acked,
		LastReceiptMS: ageMS(now, us.LastReceipt), LastError: us.LastError, ReceiptLatency: us.ReceiptLatency, Alarm: us.Alarm,
		ResendEveryMS: us.ResendEvery.Milliseconds()}
	if us.Alarm != "" {
		h.Uplink.AlarmAgeMS = now.Sub(us.AlarmSince).Milliseconds()
	}
	h.Temps = a.board.Temperatures()
	h.Board = a.board.Peripherals()
	return h
}

// reportHealth logs and publishes Health every interval until ctx ends.
// The diag topic is QoS 0: a missed health report is replaced by the next.
func (a *Agent) reportHealth(ctx context.Context, every time.Duration, runners []*capture.Runner) {
	// Alarms are checked every couple of seconds so central hears of a full
	// spool at once; the whole health document goes every interval.
	t := time.NewTicker(min(every, alarmCheckEvery))
	defer t.Stop()
	last := time.Now()
	purged := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		h := a.health(runners)
		for _, p := range h.Spool.PurgedAside[purged:] {
			a.log.Warn("moved-aside spool file deleted: retention ended for every read in it", "path", p)
		}
		purged = len(h.Spool.PurgedAside)
		if err := a.uplink.SetAlarms(ctx, healthAlarms(h)); err != nil {
			a.log.Debug("publish status alarms", "err", err)
		}
		if time.Since(last) < every {
			continue
		}
		last = time.Now()
		a.log.Info("health", "reads", h.Reads, "spool", h.Spool.Records, "uplink", h.Uplink.Connected,
			"gnss_fix", h.GNSS.HasFix, "cameras", len(h.Cameras))
		if b, err := json.Marshal(h); err == nil {
			if err := a.uplink.PublishDiag(ctx, b); err != nil {
				a.log.Debug("publish diag", "err", err)
			}
		}
	}
}

// alarmCheckEvery is how often the status topic's alarms are refreshed.
const alarmCheckEvery = 2 * time.Second

// healthAlarms are the conditions the retained status topic carries:
// what central must see even when nobody reads the diag topic.
func healthAlarms(h Health) []string {
	var out []string
	if h.Spool.Full {
		out = append(out, "spool full: new reads are refused ("+h.Spool.FullCause+")")
	}
	if h.Spool.MovedAside != "" {
		a := "damaged spool file moved aside to " + h.Spool.MovedAside + ": " + h.Spool.MovedAsideReason
		if slices.Contains(h.Spool.PurgedAside, h.Spool.MovedAside) {
			a += " (since deleted: retention ended for every read in it)"
		}
		out = append(out, a)
	}
	if h.Spool.NotStored > 0 {
		out = append(out, fmt.Sprintf("%d read(s) lost: the spool refused them", h.Spool.NotStored))
	}
	if h.Privacy.AuditTampered != "" {
		out = append(out, "audit log failed verification at start; moved aside to "+h.Privacy.AuditTampered)
	}
	if h.Uplink.Alarm != "" {
		out = append(out, "uplink: "+h.Uplink.Alarm)
	}
	return out
}
