package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alpr-agent/alpr-agent/audit"
	"github.com/alpr-agent/alpr-agent/hotlist"
	"github.com/alpr-agent/alpr-agent/spool"
	"github.com/alpr-agent/alpr-agent/uplink"
)

// guard holds what the device enforces on its own reads: the signed
// hotlist and its matching, hits-only mode, the crop switch, signed remote
// config, and the audit log of every change and of diag requests that
// return plate data. Its methods are safe for concurrent use.
type guard struct {
	log    *slog.Logger
	device string
	audit  *audit.Log
	// auditAside is where a log that failed verification at start was
	// moved ("" when it verified).
	auditAside string
	hot        *hotlist.Store       // nil without hotlist.public_key_file
	remote     *hotlist.ConfigStore // nil without hotlist.public_key_file
	keys       hotlist.Keyring
	maxHot     int // largest hotlist / config message accepted
	maxCfg     int

	hitsOnly atomic.Bool
	crops    atomic.Bool

	hits      atomic.Uint64 // reads that matched the hotlist
	discarded atomic.Uint64 // hits-only: non-hit reads counted, not kept

	mu          sync.Mutex
	hotRejected uint64
	hotLastErr  string
	hotUpdated  time.Time
	cfgRejected uint64
	cfgLastErr  string
	cfgSeq      uint64
}

// openGuard opens the audit log, and the hotlist and remote-config stores
// when a signing key is configured. now is the wall clock (GNSS-corrected
// when there is a fix: boards without an RTC boot years off).
func openGuard(cfg Config, now func() time.Time, log *slog.Logger) (*guard, error) {
	g := &guard{log: log, device: cfg.Device, maxHot: cfg.Hotlist.MaxBytes, maxCfg: cfg.Remote.MaxBytes}
	g.hitsOnly.Store(cfg.Privacy.HitsOnly)
	g.crops.Store(cfg.Privacy.Crops)

	aopt := audit.Options{Now: now}
	if cfg.Audit.HMACKeyFile != "" {
		k, err := spool.LoadKeyFile(cfg.Audit.HMACKeyFile)
		if err != nil {
			return nil, configError{fmt.Errorf("audit.hmac_key_file: %w", err)}
		}
		aopt.Key = k
	}
	apath := statePath(cfg, cfg.Audit.Path, "audit.log")
	al, err := audit.Open(apath, aopt)
	if errors.Is(err, audit.ErrTampered) {
		// Keep the evidence and keep reading plates: the broken log is
		// moved aside, a new chain starts with an entry that names it, and
		// health carries the alarm until someone looks.
		aside := fmt.Sprintf("%s.tampered-%s", apath, time.Now().UTC().Format("20060102T150405Z"))
		if rerr := os.Rename(apath, aside); rerr != nil {
			return nil, fmt.Errorf("open audit log %s: %w; and moving it aside failed: %w", apath, err, rerr)
		}
		log.Error("AUDIT LOG FAILED VERIFICATION: moved aside as evidence, a new chain starts", "path", apath, "moved_to", aside, "err", err)
		reason := err.Error()
		if al, err = audit.Open(apath, aopt); err == nil {
			g.auditAside = aside
			_, err = al.Append(kindAuditTampered, "agent", map[string]any{"moved_to": aside, "reason": reason})
		}
	}
	if err != nil {
		return nil, fmt.Errorf("open audit log %s (check it with `alpr-agent audit verify`): %w", apath, err)
	}
	g.audit = al
	if r := al.Recovered(); r != nil {
		log.Warn("audit log: a cut-short last line (power cut?) was recorded and the chain continues", "path", apath, "offset", r.Offset, "bytes", r.Bytes)
	}
	if cfg.Hotlist.PublicKeyFile == "" {
		return g, nil
	}
	keys, err := hotlist.ReadPublicKeys(cfg.Hotlist.PublicKeyFile)
	if err != nil {
		al.Close()
		return nil, configError{fmt.Errorf("hotlist.public_key_file: %w", err)}
	}
	g.keys = keys
	hc := hotlist.Config{Path: statePath(cfg, cfg.Hotlist.Path, "hotlist.json"), MaxBytes: cfg.Hotlist.MaxBytes,
		ClockSkew: cfg.Hotlist.ClockSkew, MaxDistance: cfg.Hotlist.MaxDistance, Now: now}
	if g.hot, err = hotlist.Open(hc, keys, log.With("subsystem", "hotlist")); err != nil {
		al.Close()
		return nil, fmt.Errorf("open hotlist: %w", err)
	}
	rc := hotlist.RemoteConfig{Device: cfg.Device, Path: statePath(cfg, cfg.Remote.Path, "remote-config.json"),
		MaxBytes: cfg.Remote.MaxBytes, ClockSkew: cfg.Hotlist.ClockSkew, Now: now}
	if g.remote, err = hotlist.OpenConfigStore(rc, keys, log.With("subsystem", "remote-config")); err != nil {
		al.Close()
		return nil, fmt.Errorf("open remote config: %w", err)
	}
	if l := g.hot.List(); l != nil {
		log.Info("hotlist in use", "name", l.Name, "seq", l.Seq, "entries", l.Len())
	}
	// The patch accepted last time applies again before the broker is
	// reachable; it was checked when it came, and is checked again here.
	if p, ok := g.remote.Current(); ok {
		if err := g.applyPatch(p.Patch); err != nil {
			log.Error("stored remote config patch not applied", "seq", p.Seq, "err", err)
		} else {
			g.cfgSeq = p.Seq
			log.Info("stored remote config patch applied", "seq", p.Seq)
		}
	}
	return g, nil
}

// Close closes the audit log.
func (g *guard) Close() error { return g.audit.Close() }

// subscriptions are the uplink's retained hotlist and config topics; none
// without a signing key.
func (g *guard) subscriptions() []uplink.Subscription {
	if g.hot == nil {
		return nil
	}
	return []uplink.Subscription{
		{Kind: uplink.TopicHotlist, MaxBytes: g.maxHot, Handle: g.onHotlist},
		{Kind: uplink.TopicConfig, MaxBytes: g.maxCfg, Handle: g.onConfig},
	}
}

// onHotlist applies a message from the hotlist topic and audits the
// outcome. A rejected list leaves the one in use untouched.
func (g *guard) onHotlist(_ context.Context, payload []byte) error {
	u, err := g.hot.Apply(payload)
	if err != nil && !errors.Is(err, hotlist.ErrPersist) {
		g.mu.Lock()
		g.hotRejected++
		g.hotLastErr = err.Error()
		g.mu.Unlock()
		g.record(audit.KindHotlist, "mqtt:"+uplink.Topic(g.device, uplink.TopicHotlist),
			map[string]any{"accepted": false, "reason": err.Error(), "bytes": len(payload)})
		return err
	}
	if u.Unchanged {
		return nil
	}
	g.mu.Lock()
	g.hotUpdated = time.Now()
	g.mu.Unlock()
	g.record(audit.KindHotlist, "mqtt:"+uplink.Topic(g.device, uplink.TopicHotlist),
		map[string]any{"accepted": true, "name": u.Name, "seq": u.Seq, "prev_seq": u.PrevSeq, "entries": u.Entries,
			"key_id": u.KeyID, "issued": u.Issued, "sha256": u.SHA256, "persisted": err == nil})
	return nil
}

// remotePatch is what a signed config patch may change, and how: the
// switches read on every read. Anything else in a patch refuses it whole.
type remotePatch struct {
	Privacy *struct {
		HitsOnly *bool `json:"hits_only"`
		Crops    *bool `json:"crops"`
	} `json:"privacy"`
}

// checkPatch decodes a patch, refusing keys that may not change remotely.
func checkPatch(patch []byte) (remotePatch, error) {
	var p remotePatch
	dec := json.NewDecoder(bytes.NewReader(patch))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return p, fmt.Errorf("config patch: only privacy.hits_only and privacy.crops may change remotely: %w", err)
	}
	return p, nil
}

func (g *guard) applyPatch(patch []byte) error {
	p, err := checkPatch(patch)
	if err != nil {
		return err
	}
	if p.Privacy == nil {
		return nil
	}
	if v := p.Privacy.HitsOnly; v != nil {
		if *v && g.hot == nil {
			return fmt.Errorf("config patch: privacy.hits_only needs a hotlist key")
		}
		g.hitsOnly.Store(*v)
	}
	if v := p.Privacy.Crops; v != nil {
		g.crops.Store(*v)
	}
	return nil
}

// onConfig verifies a config patch, checks its keys before accepting it
// (so a refused patch is never persisted), applies it and audits.
func (g *guard) onConfig(_ context.Context, payload []byte) error {
	actor := "mqtt:" + uplink.Topic(g.device, uplink.TopicConfig)
	reject := func(err error) error {
		g.mu.Lock()
		g.cfgRejected++
		g.cfgLastErr = err.Error()
		g.mu.Unlock()
		g.record(audit.KindConfig, actor, map[string]any{"accepted": false, "reason": err.Error(), "bytes": len(payload)})
		return err
	}
	_, _, doc, err := hotlist.Inspect(payload, g.keys, g.maxCfg)
	if err == nil {
		var d *hotlist.ConfigDocument
		if d, err = hotlist.ParseConfigDocument(doc, g.device); err == nil {
			_, err = checkPatch(d.Patch)
		}
	}
	if err != nil {
		g.log.Warn("config patch rejected", "reason", err, "bytes", len(payload))
		return reject(err)
	}
	p, changed, err := g.remote.Apply(payload)
	if err != nil && !errors.Is(err, hotlist.ErrPersist) {
		return reject(err)
	}
	if !changed {
		return nil
	}
	if aerr := g.applyPatch(p.Patch); aerr != nil {
		return reject(aerr)
	}
	g.mu.Lock()
	g.cfgSeq = p.Seq
	g.mu.Unlock()
	g.log.Info("remote config applied", "seq", p.Seq, "patch", string(p.Patch), "hits_only", g.hitsOnly.Load(), "crops", g.crops.Load())
	g.record(audit.KindConfig, actor, map[string]any{"accepted": true, "seq": p.Seq, "key_id": p.KeyID,
		"patch": json.RawMessage(p.Patch), "sha256": p.SHA256, "persisted": err == nil})
	return nil
}

// match is the hotlist part of a read: a hit carries the matched entry.
func (g *guard) match(plate string, at time.Time) uplink.Hotlist {
	if g.hot == nil {
		return uplink.Hotlist{}
	}
	e, d, ok := g.hot.List().MatchDistance(plate, at)
	if !ok {
		return uplink.Hotlist{}
	}
	g.hits.Add(1)
	h := uplink.Hotlist{Hit: true, List: e.List, Entry: e.Plate, Reason: e.Reason, Match: "exact"}
	if d > 0 {
		h.Match, h.Distance = "fuzzy", d
	}
	if h.List == "" {
		h.List = g.hot.List().Name
	}
	return h
}

// diagAccess audits a diag request that returned plate data.
func (g *guard) diagAccess(r *http.Request, what string, n int) {
	actor := "http:" + r.RemoteAddr
	if u, _, ok := r.BasicAuth(); ok {
		actor += " user:" + u
	}
	g.record(audit.KindDiagAccess, actor, map[string]any{"path": r.URL.Path, "what": what, "count": n})
}

// record appends to the audit log; a failed append is logged loudly (the
// action itself has happened and is not undone).
func (g *guard) record(kind, actor string, detail any) {
	if _, err := g.audit.Append(kind, actor, detail); err != nil {
		g.log.Error("AUDIT LOG APPEND FAILED", "kind", kind, "actor", actor, "err", err)
	}
}

// kindAuditTampered opens a new chain after the old log failed
// verification at start; its detail names where the old log went.
const kindAuditTampered = "audit_tampered"

// PrivacyHealth is what the device enforces, for diag and the status page.
type PrivacyHealth struct {
	HitsOnly  bool   `json:"hits_only"`
	Crops     bool   `json:"crops"`
	Hits      uint64 `json:"hotlist_hits"`
	Discarded uint64 `json:"non_hits_discarded"` // hits-only: counted, not kept
	// Hotlist in use (empty name when none).
	HotlistName     string `json:"hotlist_name,omitempty"`
	HotlistSeq      uint64 `json:"hotlist_seq,omitempty"`
	HotlistEntries  int    `json:"hotlist_entries"`
	HotlistRejected uint64 `json:"hotlist_rejected"`
	HotlistError    string `json:"hotlist_last_error,omitempty"`
	ConfigSeq       uint64 `json:"remote_config_seq,omitempty"`
	ConfigRejected  uint64 `json:"remote_config_rejected"`
	ConfigError     string `json:"remote_config_last_error,omitempty"`
	// AuditSeq and AuditHead anchor the audit chain off the device: a
	// rewritten log cannot match the heads already sent.
	AuditSeq  uint64 `json:"audit_seq"`
	AuditHead string `json:"audit_head"`
	// AuditTampered is where the log that failed verification at start
	// was moved; empty when it verified.
	AuditTampered string `json:"audit_tampered,omitempty"`
}

func (g *guard) health() PrivacyHealth {
	h := PrivacyHealth{HitsOnly: g.hitsOnly.Load(), Crops: g.crops.Load(), Hits: g.hits.Load(), Discarded: g.discarded.Load()}
	if g.hot != nil {
		if l := g.hot.List(); l != nil {
			h.HotlistName, h.HotlistSeq, h.HotlistEntries = l.Name, l.Seq, l.Len()
		}
	}
	g.mu.Lock()
	h.HotlistRejected, h.HotlistError = g.hotRejected, g.hotLastErr
	h.ConfigSeq, h.ConfigRejected, h.ConfigError = g.cfgSeq, g.cfgRejected, g.cfgLastErr
	g.mu.Unlock()
	h.AuditSeq, h.AuditHead = g.audit.Head()
	h.AuditTampered = g.auditAside
	return h
}
