package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alpr-agent/alpr-agent/capture/capturetest"
	"github.com/alpr-agent/alpr-agent/gnss/gnsstest"
	"github.com/alpr-agent/alpr-agent/spool"
	"github.com/alpr-agent/alpr-agent/uplink/mqtttest"
)

// runSelftest runs `alpr-agent selftest` and returns its output and error.
func runSelftest(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	t0 := time.Now()
	err := dispatch(context.Background(), append([]string{"selftest"}, args...), &out, &errb)
	t.Logf("selftest %v took %v:\n%s%s", args, time.Since(t0).Round(time.Millisecond), out.String(), errb.String())
	return out.String(), err
}

// selftestLines maps each check name to its status line (hint lines follow
// it in the output).
func selftestLine(t *testing.T, out, name string) string {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		n := f[1]
		if n == "camera" && len(f) > 2 {
			n += " " + f[2]
		}
		if n == name {
			return l
		}
	}
	t.Fatalf("no line for check %q in:\n%s", name, out)
	return ""
}

// fakeThermal makes a sysfs root with one thermal zone.
func fakeThermal(t *testing.T, milliC string) string {
	t.Helper()
	root := t.TempDir()
	zone := filepath.Join(root, "class", "thermal", "thermal_zone0")
	if err := os.MkdirAll(zone, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]string{"type": "cpu-thermal\n", "temp": milliC + "\n"} {
		if err := os.WriteFile(filepath.Join(zone, name), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// TestSelftest_AllGood runs the self-test against real parts: a clip file
// camera, the models, a pty receiver fed the demo log, a real mosquitto
// and a spool with one record. Nothing fails, and --json parses.
func TestSelftest_AllGood(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the recognizer and a broker")
	}
	needModels(t)
	work := t.TempDir()
	clip := filepath.Join(work, "clip.avi")
	spec := capturetest.SmallClip(40)
	if err := capturetest.WriteClip(clip, spec); err != nil {
		t.Fatal(err)
	}
	broker := mqtttest.Start(t)
	master, port := gnsstest.OpenPTY(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel) // runs before OpenPTY's cleanup closes the master
	go feedNMEA(ctx, master, gnsstest.DemoNMEA())

	spoolPath := filepath.Join(work, "spool.db")
	sp, err := spool.Open(spoolPath, spool.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.Put(context.Background(), spool.Record{ID: "r1", Lane: spool.LaneRead, Created: time.Now().Add(-time.Minute), Payload: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	sp.Close()

	rc := defaultRecognizeConfig()
	cfgPath := writeConfig(t, fmt.Sprintf(`
device: unit-self-1
cameras:
  - {name: front, kind: file, path: %q, fps: 10, loop: true}
recognize: {model_dir: %q, runtime_lib: %q}
gnss: {port: %q}
spool: {path: %q}
uplink: {broker: %q, insecure: true}
board: {profile: none, sysfs_root: %q}
`, clip, rc.ModelDir, rc.RuntimeLib, port, spoolPath, broker.URL(), fakeThermal(t, "45000")))

	out, err := runSelftest(t, "--config", cfgPath)
	if err != nil {
		t.Fatalf("selftest: %v, want exit 0", err)
	}
	for name, want := range map[string]string{
		"config":       "PASS",
		"camera front": "PASS",
		"models":       "PASS",
		"gnss":         "PASS",
		"broker":       "PASS",
		"spool":        "PASS",
		"board":        "PASS",
	} {
		if l := selftestLine(t, out, name); !strings.HasPrefix(l, want) {
			t.Errorf("%s: %q, want %s", name, l, want)
		}
	}
	if l := selftestLine(t, out, "models"); !strings.Contains(l, "YG9X2G") {
		t.Errorf("models: %q, want the test plate's text", l)
	}
	if l := selftestLine(t, out, "gnss"); !strings.Contains(l, "fix 3D") || !strings.Contains(l, "detected") {
		t.Errorf("gnss: %q, want a 3D fix at a detected rate", l)
	}
	if l := selftestLine(t, out, "spool"); !strings.Contains(l, "1 record(s) queued") {
		t.Errorf("spool: %q, want the queued record", l)
	}
	if l := selftestLine(t, out, "board"); !strings.Contains(l, "45.0°C") {
		t.Errorf("board: %q, want the fixture's temperature", l)
	}
	// The demo log is from 2026-08-05: the clock is compared and, unless
	// this runs at that very moment, found off.
	if l := selftestLine(t, out, "clock"); !strings.Contains(l, "GNSS time") || strings.HasPrefix(l, "FAIL") {
		t.Errorf("clock: %q, want a comparison with GNSS time", l)
	}
	if !strings.Contains(out, "summary: ") || !strings.Contains(out, " 0 fail") {
		t.Errorf("summary missing or failing:\n%s", out)
	}

	jout, err := runSelftest(t, "--config", cfgPath, "--json")
	if err != nil {
		t.Fatalf("selftest --json: %v", err)
	}
	var rep selftestReport
	if err := json.Unmarshal([]byte(jout), &rep); err != nil {
		t.Fatalf("--json output does not parse: %v\n%s", err, jout)
	}
	if rep.Fail != 0 || rep.Pass+rep.Warn != len(rep.Checks) || len(rep.Checks) != 9 {
		t.Errorf("--json = %+v, want 9 checks, none failing", rep)
	}
	for _, c := range rep.Checks {
		if c.Name == "" || c.Reason == "" || (c.Status != statusPass && c.Hint == "") {
			t.Errorf("check %+v lacks a name, reason or hint", c)
		}
	}
}

// TestSelftest_Broken: the broker port is closed, the GNSS port, the
// camera file, the models and the spool folder are missing. Each fails
// with its own reason and the exit status is 1.
func TestSelftest_Broken(t *testing.T) {
	noEnvOverrides(t)
	work := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	cfgPath := writeConfig(t, fmt.Sprintf(`
device: unit-self-2
cameras:
  - {name: front, kind: file, path: %q}
recognize: {model_dir: %q, runtime_lib: %q}
gnss: {port: %q}
spool: {path: %q}
uplink: {broker: "tcp://%s", insecure: true}
board: {profile: none, sysfs_root: %q}
`, filepath.Join(work, "absent.avi"), filepath.Join(work, "models"), filepath.Join(work, "libonnxruntime.so.1"),
		filepath.Join(work, "ttyACM9"), filepath.Join(work, "nodir", "spool.db"), closed, fakeThermal(t, "50000")))

	t0 := time.Now()
	out, err := runSelftest(t, "--config", cfgPath, "--timeout", "5s")
	if !errors.Is(err, errSilent) {
		t.Fatalf("selftest: %v, want exit 1 (errSilent)", err)
	}
	if dt := time.Since(t0); dt > 10*time.Second {
		t.Errorf("broken selftest took %v: failures should be quick", dt)
	}
	for name, want := range map[string]string{
		"camera front": "absent.avi is missing",
		"models":       "missing file",
		"gnss":         "ttyACM9 is missing",
		"broker":       "connection to " + closed + " refused",
		"spool":        "does not exist",
	} {
		l := selftestLine(t, out, name)
		if !strings.HasPrefix(l, "FAIL") || !strings.Contains(l, want) {
			t.Errorf("%s: %q, want FAIL ... %s", name, l, want)
		}
	}
	if !strings.Contains(out, "make setup") || !strings.Contains(out, "      - recognize: ") {
		t.Errorf("no `make setup` hint for the missing models:\n%s", out)
	}
	if l := selftestLine(t, out, "clock"); !strings.HasPrefix(l, "WARN") || !strings.Contains(l, "cannot check") {
		t.Errorf("clock: %q, want WARN cannot check", l)
	}
	if strings.Count(out, "hint: ") < 6 {
		t.Errorf("want a hint under every WARN and FAIL:\n%s", out)
	}
}

func TestSelftest_BadConfig(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       []string
	}{
		{"UnknownKey", "device: unit-7\ncamras: []\nuplink: {broker: \"ssl://b:8883\"}\n", []string{`unknown key "camras"`}},
		{"SeveralBadKeys", "device: \"\"\ncameras: [{name: front, kind: v4l2, path: /dev/video0}]\nretention: {max_age: 0s}\nuplink: {broker: \"ssl://b:8883\"}\n",
			[]string{"2 problems", "- device:", "- retention.max_age:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runSelftest(t, "--config", writeConfig(t, tc.body))
			if !errors.Is(err, errSilent) {
				t.Fatalf("err = %v, want errSilent", err)
			}
			if !strings.HasPrefix(out, "FAIL  config") || !strings.Contains(out, "other checks skipped") {
				t.Errorf("want a config FAIL and skipped checks:\n%s", out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
	t.Run("JSON", func(t *testing.T) {
		out, err := runSelftest(t, "--json", "--config", writeConfig(t, "device: x\nbogus: 1\n"))
		if !errors.Is(err, errSilent) {
			t.Fatalf("err = %v, want errSilent", err)
		}
		var rep selftestReport
		if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Fail != 1 || len(rep.Checks) != 1 || !strings.Contains(rep.Checks[0].Reason, "bogus") {
			t.Errorf("--json = %+v (%v), want one failing config check naming bogus", rep, err)
		}
	})
}

// TestSelftest_SpoolInUse: a spool locked by a running agent is reported,
// not failed, and the self-test does not wait long for the lock.
func TestSelftest_SpoolInUse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spool.db")
	sp, err := spool.Open(path, spool.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	t0 := time.Now()
	r := checkSpool(SpoolConfig{Path: path}, RetentionConfig{MaxAge: time.Hour}, time.Now())
	if r.Status == statusFail || !strings.Contains(r.Reason, "spool in use by a running agent") {
		t.Fatalf("checkSpool = %+v, want in use, not FAIL", r)
	}
	if dt := time.Since(t0); dt > 2*time.Second {
		t.Errorf("waited %v for the lock", dt)
	}
}

func TestSelftest_SpoolOld(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spool.db")
	sp, err := spool.Open(path, spool.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.Put(context.Background(), spool.Record{ID: "old", Lane: spool.LaneRead, Created: time.Now().Add(-40 * time.Hour), Payload: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	sp.Close()
	r := checkSpool(SpoolConfig{Path: path}, RetentionConfig{MaxAge: 72 * time.Hour}, time.Now())
	if r.Status != statusWarn || !strings.Contains(r.Reason, "over half of retention.max_age") {
		t.Fatalf("checkSpool = %+v, want WARN about the old record", r)
	}
	// The self-test reports; it does not apply retention.
	sp, err = spool.Open(path, spool.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	if sp.Len() != 1 {
		t.Errorf("spool has %d records after the self-test, want 1", sp.Len())
	}
}

func TestSelftest_Clock(t *testing.T) {
	now := time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		g      *gnssOutcome
		status string
		want   string
	}{
		{"InSync", &gnssOutcome{fix: true, offset: 300 * time.Millisecond}, statusPass, "within 300ms"},
		{"Ahead", &gnssOutcome{fix: true, offset: 90 * time.Second}, statusWarn, "1m30s ahead of GNSS time"},
		{"DaysAhead", &gnssOutcome{fix: true, offset: 2732*time.Hour + 14*time.Minute}, statusWarn, "113 days 20h0m0s ahead of GNSS time"},
		{"Behind", &gnssOutcome{fix: true, offset: -3 * time.Second}, statusWarn, "3s behind GNSS time"},
		{"NoFix", &gnssOutcome{}, statusWarn, "cannot check: no GNSS fix"},
		{"NotRun", nil, statusWarn, "cannot check"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := checkClock(tc.g, true, now)
			if r.Status != tc.status || !strings.Contains(r.Reason, tc.want) {
				t.Errorf("checkClock = %+v, want %s %q", r, tc.status, tc.want)
			}
		})
	}
	r := checkClock(nil, true, time.Unix(0, 0))
	if !strings.Contains(r.Reason, "1970-01-01") {
		t.Errorf("checkClock at the epoch = %+v, want the date named", r)
	}
}

// TestSelftest_GNSSNoNMEA: a receiver that sends bytes but no NMEA (wrong
// baud rate looks like this on a pty) is told apart from a silent one.
func TestSelftest_GNSSNoNMEA(t *testing.T) {
	master, port := gnsstest.OpenPTY(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() {
		junk := bytes.Repeat([]byte{0xf0, 0x0f, 0x55, 0xaa, '\n'}, 40)
		for ctx.Err() == nil {
			if _, err := master.Write(junk); err != nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	cctx, ccancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer ccancel()
	r, out := checkGNSS(cctx, GNSSConfig{Port: port, Baud: 9600, StaleAfter: 3 * time.Second})
	if r.Status != statusFail || !strings.Contains(r.Reason, "no valid NMEA sentence at 9600 baud (wrong baud?)") || out.fix {
		t.Fatalf("checkGNSS = %+v, want FAIL wrong baud", r)
	}

	_, silent := gnsstest.OpenPTY(t)
	cctx2, ccancel2 := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer ccancel2()
	r, _ = checkGNSS(cctx2, GNSSConfig{Port: silent, Baud: 9600, StaleAfter: 3 * time.Second})
	if r.Status != statusFail || !strings.Contains(r.Reason, "no data arrived") {
		t.Fatalf("checkGNSS on a silent port = %+v, want FAIL no data", r)
	}
}

// tlsPKI is a CA with a server certificate for 127.0.0.1 and a client
// certificate, as PEM files.
type tlsPKI struct {
	ca, serverCert, serverKey, clientCert, clientKey string
}

func newPKI(t *testing.T, dir, name string) tlsPKI {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name + " CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	p := tlsPKI{ca: filepath.Join(dir, name+"-ca.crt")}
	writePEM(t, p.ca, "CERTIFICATE", caDER)
	issue := func(cn string, serial int64, server bool) (string, string) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}
		if server {
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
			tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, _ := x509.MarshalECPrivateKey(key)
		c, k := filepath.Join(dir, name+"-"+cn+".crt"), filepath.Join(dir, name+"-"+cn+".key")
		writePEM(t, c, "CERTIFICATE", der)
		writePEM(t, k, "EC PRIVATE KEY", kder)
		return c, k
	}
	p.serverCert, p.serverKey = issue("broker", 2, true)
	p.clientCert, p.clientKey = issue("unit-tls-1", 3, false)
	return p
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestSelftest_BrokerTLS runs the broker check against a mosquitto TLS
// listener that requires client certificates: the right files pass, and
// each wrong one fails with its own reason.
func TestSelftest_BrokerTLS(t *testing.T) {
	dir := t.TempDir()
	good := newPKI(t, dir, "fleet")
	other := newPKI(t, dir, "other")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tlsAddr := ln.Addr().(*net.TCPAddr)
	ln.Close()
	mqtttest.Start(t, mqtttest.WithConfig(fmt.Sprintf("listener %d 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate true\n",
		tlsAddr.Port, good.ca, good.serverCert, good.serverKey)))
	// The TLS listener may come up just after the plaintext one.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", tlsAddr.String())
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("TLS listener not up: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	url := fmt.Sprintf("ssl://127.0.0.1:%d", tlsAddr.Port)
	for _, tc := range []struct {
		name           string
		broker         string
		ca, cert, key  string
		status, reason string
	}{
		{"Accepted", url, good.ca, good.clientCert, good.clientKey, statusPass, "client certificate accepted"},
		{"UnknownCA", url, other.ca, good.clientCert, good.clientKey, statusFail, "signed by an unknown CA"},
		{"Hostname", fmt.Sprintf("ssl://localhost:%d", tlsAddr.Port), good.ca, good.clientCert, good.clientKey, statusFail, "not valid for localhost"},
		{"ClientCertRejected", url, good.ca, other.clientCert, other.clientKey, statusFail, "rejected the client certificate"},
		{"NoClientCert", url, good.ca, "", "", statusFail, "requires a client certificate and none is configured"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Device = "unit-tls-1"
			cfg.Uplink.Broker, cfg.Uplink.CAFile, cfg.Uplink.CertFile, cfg.Uplink.KeyFile = tc.broker, tc.ca, tc.cert, tc.key
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			r := checkBroker(ctx, cfg)
			t.Logf("%s  %s\n  hint: %s", r.Status, r.Reason, r.Hint)
			if r.Status != tc.status || !strings.Contains(r.Reason, tc.reason) {
				t.Errorf("checkBroker = %+v, want %s %q", r, tc.status, tc.reason)
			}
		})
	}
}

// TestSelftest_HungCheck: a check stuck in a call that ignores its context
// is reported as hung after its timeout, and the others still report.
func TestSelftest_HungCheck(t *testing.T) {
	defer func(g time.Duration) { selftestHangGrace = g }(selftestHangGrace)
	selftestHangGrace = 100 * time.Millisecond
	stuck := make(chan struct{})
	defer close(stuck)
	checks := []*selfCheck{
		{name: "stuck", run: func(context.Context) checkResult { <-stuck; return passf("never") }, done: make(chan struct{})},
		{name: "quick", run: func(context.Context) checkResult { return passf("ok") }, done: make(chan struct{})},
	}
	checks = append(checks, &selfCheck{name: "after-stuck", after: checks[0].done, done: make(chan struct{}),
		run: func(context.Context) checkResult { return passf("ran") }})
	var got []checkResult
	t0 := time.Now()
	runSelfChecks(context.Background(), checks, 200*time.Millisecond, func(r checkResult) { got = append(got, r) })
	if dt := time.Since(t0); dt > 2*time.Second {
		t.Errorf("took %v", dt)
	}
	if len(got) != 3 || got[0].Status != statusFail || !strings.Contains(got[0].Reason, "did not finish within 200ms") ||
		got[1].Status != statusPass || got[2].Status != statusPass {
		t.Fatalf("results = %+v, want stuck FAIL, the others PASS", got)
	}
}
