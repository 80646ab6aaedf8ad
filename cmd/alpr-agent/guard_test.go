package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/alpr-agent/alpr-agent/audit"
	"github.com/alpr-agent/alpr-agent/capture/capturetest"
	"github.com/alpr-agent/alpr-agent/hotlist"
	"github.com/alpr-agent/alpr-agent/uplink"
	"github.com/alpr-agent/alpr-agent/uplink/mqtttest"
)

// signingKey makes a hotlist key pair: the public half in a file for the
// device, the private half for the test to sign with.
func signingKey(t *testing.T, dir string) (string, ed25519.PrivateKey) {
	t.Helper()
	pubPEM, privPEM, _, err := hotlist.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := hotlist.ParsePrivateKey(privPEM)
	if err != nil {
		t.Fatal(err)
	}
	pub := filepath.Join(dir, "hotlist.pub")
	if err := os.WriteFile(pub, pubPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

func signedList(t *testing.T, priv ed25519.PrivateKey, seq uint64, entries ...hotlist.Entry) []byte {
	t.Helper()
	env, err := hotlist.SignDocument(&hotlist.Document{V: 1, Name: "stolen", Seq: seq, Issued: time.Now().Add(-time.Minute), Entries: entries}, priv)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func signedPatch(t *testing.T, priv ed25519.PrivateKey, seq uint64, patch string) []byte {
	t.Helper()
	doc := fmt.Sprintf(`{"v":1,"seq":%d,"issued":%q,"patch":%s}`, seq, time.Now().Add(-time.Minute).UTC().Format(time.RFC3339), patch)
	env, err := hotlist.SignConfig([]byte(doc), priv)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// auditEntries reads the audit log's entries (after checking its chain).
func auditEntries(t *testing.T, path string) []audit.Entry {
	t.Helper()
	if rep, err := audit.Verify(path); err != nil || !rep.OK() {
		t.Fatalf("audit log does not verify: %+v %v", rep, err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []audit.Entry
	for _, line := range bytes.Split(bytes.TrimSpace(raw), []byte("\n")) {
		var e audit.Entry
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		out = append(out, e)
	}
	return out
}

// TestGuard_HotlistConfigAudit: signed lists and patches are applied and
// audited; forged, replayed and out-of-bounds ones are refused without
// touching what is in use, and are audited too.
func TestGuard_HotlistConfigAudit(t *testing.T) {
	dir := t.TempDir()
	pub, priv := signingKey(t, dir)
	_, otherPriv := signingKey(t, t.TempDir())
	cfg := DefaultConfig()
	cfg.Device = "unit-1"
	cfg.Spool.Path = filepath.Join(dir, "spool.db")
	cfg.Hotlist.PublicKeyFile = pub
	g, err := openGuard(cfg, time.Now, silentLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	ctx := context.Background()
	now := time.Now()

	if h := g.match("7KMR415", now); h.Hit {
		t.Fatalf("hit %+v before any list", h)
	}
	list := signedList(t, priv, 1,
		hotlist.Entry{Plate: "7KMR415", Reason: "stolen vehicle"},
		hotlist.Entry{Plate: "CZH583O", Reason: "amber alert", List: "amber"},
		hotlist.Entry{Plate: "OLD1234", Expires: now.Add(-time.Hour)})
	if err := g.onHotlist(ctx, list); err != nil {
		t.Fatalf("signed list refused: %v", err)
	}
	if h := g.match("7KMR415", now); !h.Hit || h.Match != "exact" || h.Entry != "7KMR415" || h.List != "stolen" || h.Reason != "stolen vehicle" {
		t.Errorf("exact: %+v", h)
	}
	// The read has the digit 0 where the list has the letter O: a
	// confusable swap, a fuzzy hit that names the listed plate.
	if h := g.match("CZH5830", now); !h.Hit || h.Match != "fuzzy" || h.Entry != "CZH583O" || h.List != "amber" || h.Distance <= 0 {
		t.Errorf("fuzzy: %+v", h)
	}
	if h := g.match("OLD1234", now); h.Hit {
		t.Errorf("expired entry matched: %+v", h)
	}
	if h := g.match("8BDW624", now); h.Hit {
		t.Errorf("unlisted plate matched: %+v", h)
	}

	// Refused, each leaving the list in use as it was.
	forged := signedList(t, otherPriv, 2, hotlist.Entry{Plate: "AAA111"})
	tampered := bytes.Replace(signedList(t, priv, 3, hotlist.Entry{Plate: "BBB222"}), []byte(`"sig":"`), []byte(`"sig":"AAAA`), 1)
	replay := signedList(t, priv, 1, hotlist.Entry{Plate: "CCC333"})
	huge := bytes.Repeat([]byte("x"), cfg.Hotlist.MaxBytes+1)
	for name, msg := range map[string][]byte{"unknown key": forged, "bad signature": tampered, "replay": replay, "huge": huge, "garbage": []byte("{not json")} {
		if err := g.onHotlist(ctx, msg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if l := g.hot.List(); l == nil || l.Seq != 1 || l.Len() != 3 {
		t.Fatalf("list in use after refusals: %+v", l)
	}

	// Remote config: only the privacy switches may change.
	if err := g.onConfig(ctx, signedPatch(t, priv, 1, `{"privacy":{"hits_only":true}}`)); err != nil {
		t.Fatalf("patch refused: %v", err)
	}
	if !g.hitsOnly.Load() {
		t.Error("hits_only not applied")
	}
	if err := g.onConfig(ctx, signedPatch(t, priv, 2, `{"retention":{"max_age":"9000h"}}`)); err == nil {
		t.Error("a patch of retention.max_age was accepted")
	}
	if err := g.onConfig(ctx, signedPatch(t, otherPriv, 3, `{"privacy":{"hits_only":false}}`)); err == nil || !g.hitsOnly.Load() {
		t.Errorf("forged patch: err %v, hits_only %v", err, g.hitsOnly.Load())
	}
	if p, ok := g.remote.Current(); !ok || p.Seq != 1 {
		t.Errorf("persisted patch = %+v %v, want seq 1 (refused ones are never kept)", p, ok)
	}

	req, _ := http.NewRequest("GET", "http://127.0.0.1:8089/status.json", nil)
	req.RemoteAddr = "192.0.2.7:5555"
	g.diagAccess(req, "status.json", 3)
	g.Close()

	var kinds []string
	var accepted, refused int
	for _, e := range auditEntries(t, statePath(cfg, "", "audit.log")) {
		kinds = append(kinds, e.Kind)
		var d struct {
			Accepted *bool `json:"accepted"`
		}
		json.Unmarshal(e.Detail, &d)
		switch {
		case d.Accepted != nil && *d.Accepted:
			accepted++
		case d.Accepted != nil:
			refused++
		}
		if e.Kind == audit.KindDiagAccess && !strings.Contains(e.Actor, "192.0.2.7") {
			t.Errorf("diag access actor %q does not name the client", e.Actor)
		}
	}
	if accepted != 2 || refused != 7 {
		t.Errorf("audit: %d accepted, %d refused (%v), want 2 and 7", accepted, refused, kinds)
	}
	if !slices.Contains(kinds, audit.KindDiagAccess) {
		t.Errorf("no diag access in the audit log: %v", kinds)
	}

	// A reopened guard has the list and the patch from disk: a unit that
	// boots offline keeps enforcing them.
	g2, err := openGuard(cfg, time.Now, silentLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer g2.Close()
	if !g2.match("7KMR415", now).Hit || !g2.hitsOnly.Load() {
		t.Error("list or patch lost across a restart")
	}

	// The verifier names a tampered line.
	var out bytes.Buffer
	if err := dispatch(ctx, []string{"audit", "verify", statePath(cfg, "", "audit.log")}, &out, &out); err != nil {
		t.Fatalf("audit verify on an intact log: %v\n%s", err, out.String())
	}
	g2.Close()
	logPath := statePath(cfg, "", "audit.log")
	raw, _ := os.ReadFile(logPath)
	if err := os.WriteFile(logPath, bytes.Replace(raw, []byte(`"accepted":false`), []byte(`"accepted":true`), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	err = dispatch(ctx, []string{"audit", "verify", logPath}, &out, &out)
	if !errors.Is(err, errSilent) || !strings.Contains(out.String(), "TAMPERED") || !strings.Contains(out.String(), "line ") {
		t.Fatalf("audit verify on an edited log: err %v, output %q", err, out.String())
	}

	// The agent still starts: the edited log is kept as evidence, a new
	// chain begins with an entry naming it, and health raises an alarm.
	edited, _ := os.ReadFile(logPath)
	g3, err := openGuard(cfg, time.Now, silentLogger())
	if err != nil {
		t.Fatalf("open after tampering: %v", err)
	}
	defer g3.Close()
	h := g3.health()
	if h.AuditTampered == "" || !slices.Contains(healthAlarms(Health{Privacy: h}), "audit log failed verification at start; moved aside to "+h.AuditTampered) {
		t.Fatalf("health after tampering: %+v", h)
	}
	if kept, err := os.ReadFile(h.AuditTampered); err != nil || !bytes.Equal(kept, edited) {
		t.Errorf("evidence at %s: %v (same bytes: %v)", h.AuditTampered, err, bytes.Equal(kept, edited))
	}
	g3.Close()
	if es := auditEntries(t, logPath); len(es) != 1 || es[0].Kind != kindAuditTampered || !strings.Contains(string(es[0].Detail), filepath.Base(h.AuditTampered)) {
		t.Errorf("new chain = %+v, want one %s entry naming the old log", es, kindAuditTampered)
	}
}

// TestRun_HitsOnlyEncrypted runs the agent on the synthetic clip with a
// signed hotlist, hits-only mode and the spool encrypted at rest: only the
// two listed cars leave the unit (one exact, one fuzzy hit, both on the
// alerts topic with their list entry); the other two are counted and
// nothing of them is kept: their plates are in no file the agent wrote.
// A newer list and a refused config patch arrive over MQTT and are audited.
func TestRun_HitsOnlyEncrypted(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the recognizer on a clip")
	}
	needModels(t)
	work := t.TempDir()
	spec := capturetest.DefaultClip()
	clip := filepath.Join(work, "clip.avi")
	if err := capturetest.WriteClip(clip, spec); err != nil {
		t.Fatal(err)
	}
	var plates []string
	for _, c := range spec.Cars {
		plates = append(plates, c.Plate)
	}
	if !slices.Contains(plates, "7KMR415") || !slices.Contains(plates, "CZH5830") {
		t.Fatalf("the clip's cars changed (%v): update the hotlist of this test", plates)
	}
	pub, priv := signingKey(t, work)
	key := filepath.Join(work, "spool.key")
	if err := os.WriteFile(key, bytes.Repeat([]byte{0x5a}, 32), 0o600); err != nil {
		t.Fatal(err)
	}
	broker := mqtttest.Start(t)
	cfg := demoConfig(broker.URL(), clip, "", work)
	cfg.Device = "repo-0001"
	rt := false
	cfg.Cameras[0].Realtime = &rt
	cfg.Hotlist.PublicKeyFile = pub
	cfg.Privacy.HitsOnly = true
	cfg.Spool.KeyFile = key
	cfg.Diag.Listen = ""
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	entries := []hotlist.Entry{{Plate: "7KMR415", Reason: "stolen vehicle"}, {Plate: "CZH583O", Reason: "amber alert", List: "amber"}}
	// The list the unit was provisioned with (it boots offline with it)...
	if err := os.WriteFile(statePath(cfg, "", "hotlist.json"), signedList(t, priv, 1, entries...), 0o600); err != nil {
		t.Fatal(err)
	}
	// ...a newer one retained on the broker (same plates plus one that never
	// passes, so the outcome does not depend on when it arrives), and a
	// signed patch of a key that may not change remotely.
	pubc := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker.URL()).SetClientID("central-admin"))
	if tok := pubc.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer pubc.Disconnect(100)
	for topic, msg := range map[string][]byte{
		uplink.Topic(cfg.Device, uplink.TopicHotlist): signedList(t, priv, 2, append(entries, hotlist.Entry{Plate: "NEVER99"})...),
		uplink.Topic(cfg.Device, uplink.TopicConfig):  signedPatch(t, priv, 1, `{"uplink":{"broker":"tcp://evil:1883"}}`),
	} {
		if tok := pubc.Publish(topic, 1, true, msg); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %s: %v", topic, tok.Error())
		}
	}

	var mu sync.Mutex
	var got []uplink.Read
	rcfg := uplink.DefaultReceiverConfig()
	rcfg.Broker, rcfg.ClientID, rcfg.Store, rcfg.Insecure = broker.URL(), "central-rx", filepath.Join(work, "rx.jsonl"), true
	rcv, err := uplink.NewReceiver(rcfg, silentLogger(), func(_ []byte, r uplink.Read) {
		mu.Lock()
		got = append(got, r)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := rcv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer rcv.Close(context.Background())

	a := NewAgent(cfg, silentLogger())
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	if err := a.Run(ctx, RunOptions{UntilEOF: true, DrainTimeout: time.Minute}); err != nil {
		t.Fatalf("run: %v", err)
	}

	mu.Lock()
	defer mu.Unlock()
	hits := map[string]uplink.Read{}
	for _, r := range got {
		if !r.Hotlist.Hit {
			t.Errorf("a non-hit read left the unit in hits-only mode: %s", r.Plate)
			continue
		}
		hits[r.Plate] = r
	}
	if r, ok := hits["7KMR415"]; !ok || r.Hotlist.Match != "exact" || r.Hotlist.Reason != "stolen vehicle" {
		t.Errorf("exact hit: %+v (all: %d reads)", r.Hotlist, len(got))
	}
	if r, ok := hits["CZH5830"]; !ok || r.Hotlist.Match != "fuzzy" || r.Hotlist.Entry != "CZH583O" || r.Hotlist.List != "amber" {
		t.Errorf("fuzzy hit: %+v", r.Hotlist)
	}
	ph := a.guard.health()
	if ph.Discarded < 2 || ph.Hits < 2 {
		t.Errorf("privacy health %+v: want >= 2 hits and >= 2 non-hits counted", ph)
	}
	if ph.HotlistSeq != 2 {
		t.Errorf("hotlist in use seq %d, want 2 (the retained update)", ph.HotlistSeq)
	}

	// Nothing of the passers-by anywhere on the unit's disk; the hits are
	// encrypted in the spool.
	var files []string
	filepath.WalkDir(filepath.Dir(cfg.Spool.Path), func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && !strings.HasSuffix(p, ".avi") && p != filepath.Join(work, "rx.jsonl") {
			files = append(files, p)
		}
		return nil
	})
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range plates {
			if bytes.Contains(raw, []byte(p)) && !(strings.HasSuffix(f, "hotlist.json") && (p == "7KMR415")) {
				t.Errorf("plate %s found in %s", p, filepath.Base(f))
			}
		}
	}

	var sawList, sawPatch bool
	for _, e := range auditEntries(t, statePath(cfg, "", "audit.log")) {
		d := string(e.Detail)
		switch {
		case e.Kind == audit.KindHotlist && strings.Contains(d, `"seq":2`) && strings.Contains(d, `"accepted":true`):
			sawList = true
		case e.Kind == audit.KindConfig && strings.Contains(d, `"accepted":false`) && strings.Contains(d, "uplink"):
			sawPatch = true
		}
	}
	if !sawList || !sawPatch {
		t.Errorf("audit: list seq 2 accepted %v, uplink patch refused %v", sawList, sawPatch)
	}
}

// TestSelftest_Privacy: the installer's check names the list in use, says
// when none has come yet, and fails on a tampered audit log or a list the
// agent would refuse.
func TestSelftest_Privacy(t *testing.T) {
	dir := t.TempDir()
	pub, priv := signingKey(t, dir)
	cfg := DefaultConfig()
	cfg.Device = "unit-1"
	cfg.Spool.Path = filepath.Join(dir, "spool.db")
	cfg.Hotlist.PublicKeyFile = pub
	now := time.Now()

	r := checkPrivacy(cfg, now)
	if r.Status != statusWarn || !strings.Contains(r.Reason, "no hotlist received yet") || !strings.Contains(r.Reason, "not encrypted") {
		t.Errorf("before any list: %+v", r)
	}
	g, err := openGuard(cfg, time.Now, silentLogger())
	if err != nil {
		t.Fatal(err)
	}
	if err := g.onHotlist(context.Background(), signedList(t, priv, 4, hotlist.Entry{Plate: "7KMR415"})); err != nil {
		t.Fatal(err)
	}
	g.Close()
	key := filepath.Join(dir, "spool.key")
	os.WriteFile(key, bytes.Repeat([]byte{1}, 32), 0o600)
	cfg.Spool.KeyFile = key
	if r := checkPrivacy(cfg, now); r.Status != statusPass || !strings.Contains(r.Reason, `"stolen" #4, 1 entries`) || !strings.Contains(r.Reason, "audit log intact, 1 entries") {
		t.Errorf("with a list: %+v", r)
	}

	logPath := statePath(cfg, "", "audit.log")
	raw, _ := os.ReadFile(logPath)
	os.WriteFile(logPath, bytes.Replace(raw, []byte(`"seq":4`), []byte(`"seq":5`), 1), 0o600)
	if r := checkPrivacy(cfg, now); r.Status != statusFail || !strings.Contains(r.Reason, "audit log") {
		t.Errorf("tampered audit log: %+v", r)
	}
	os.WriteFile(logPath, raw, 0o600)

	// A list signed by someone else, planted in the state folder.
	_, other := signingKey(t, t.TempDir())
	os.WriteFile(statePath(cfg, "", "hotlist.json"), signedList(t, other, 9, hotlist.Entry{Plate: "AAA111"}), 0o600)
	if r := checkPrivacy(cfg, now); r.Status != statusFail || !strings.Contains(r.Reason, "hotlist") {
		t.Errorf("foreign list: %+v", r)
	}
}
