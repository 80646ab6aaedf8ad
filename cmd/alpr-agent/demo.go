package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/alpr-agent/alpr-agent/gnss/gnsstest"
	"github.com/alpr-agent/alpr-agent/uplink"
	"github.com/alpr-agent/alpr-agent/uplink/mqtttest"
)

// demoOptions is the whole chain on one machine: a clip played as a camera,
// a receiver log played through a pseudo-terminal as the GNSS serial port,
// a private mosquitto, and the reference receiver printing what arrives.
type demoOptions struct {
	Sample string // folder with clip.avi (scripts/gensample)
	NMEA   string // receiver log played through the pty
	Work   string // spool, broker and receiver files
	Broker string // use this broker instead of starting one
	Out    io.Writer
	Log    *slog.Logger
	// OnRead sees each read the receiver stores (after it is printed).
	OnRead func(uplink.Read)
}

func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", stderr)
	sample := fs.String("sample", ".cache/sample", "folder with the synthetic clip (go run ./scripts/gensample -out DIR)")
	nmea := fs.String("nmea", "testdata/nmea/demo.nmea", "receiver log fed through a pseudo-terminal")
	work := fs.String("work", "", "folder for spool, broker and receiver files (default: a temporary one, removed after)")
	logFormat := fs.String("log-format", "text", "log format on stderr: text or json")
	if err := fs.Parse(args); err != nil {
		return err
	}
	logger := newLogger(stderr, *logFormat, "info")
	if *work == "" {
		dir, err := os.MkdirTemp("", "alpr-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		*work = dir
	}
	n := 0
	err := runDemo(ctx, demoOptions{Sample: *sample, NMEA: *nmea, Work: *work, Out: stdout, Log: logger, OnRead: func(uplink.Read) { n++ }})
	if err != nil {
		return err
	}
	logger.Info("demo finished: every read was delivered and receipted", "reads", n)
	return nil
}

func runDemo(ctx context.Context, o demoOptions) error {
	clip := filepath.Join(o.Sample, "clip.avi")
	if _, err := os.Stat(clip); err != nil {
		return fmt.Errorf("demo sample %s is missing: make it with `go run ./scripts/gensample -out %s` (make run does)", clip, o.Sample)
	}
	nmea, err := os.ReadFile(o.NMEA)
	if err != nil {
		return fmt.Errorf("read demo receiver log: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	brokerURL := o.Broker
	if brokerURL == "" {
		dir := filepath.Join(o.Work, "mosquitto")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("start mosquitto: %w", err)
		}
		b, err := mqtttest.StartProcess(dir)
		if err != nil {
			return fmt.Errorf("start mosquitto: %w", err)
		}
		defer b.Close()
		brokerURL = b.URL()
		o.Log.Info("mosquitto started", "url", brokerURL)
	}

	// The pseudo-terminal stands in for the receiver's USB serial port.
	master, slave, err := gnsstest.Open()
	if err != nil {
		return err
	}
	defer slave.Close()
	var feedWG sync.WaitGroup
	feedWG.Add(1)
	go func() {
		defer feedWG.Done()
		if err := feedNMEA(ctx, master, nmea); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, os.ErrClosed) {
			o.Log.Warn("feed receiver log", "err", err)
		}
	}()
	defer func() {
		cancel()
		master.Close() // unblocks a feeder stuck on a full terminal buffer
		feedWG.Wait()
	}()

	var outMu sync.Mutex
	rc := uplink.DefaultReceiverConfig()
	rc.Broker, rc.ClientID, rc.Store = brokerURL, "demo-central", filepath.Join(o.Work, "received.jsonl")
	rc.Insecure = true // loopback broker of the demo only
	rcv, err := uplink.NewReceiver(rc, o.Log.With("subsystem", "receiver"), func(raw []byte, r uplink.Read) {
		outMu.Lock()
		defer outMu.Unlock()
		o.Out.Write(append(bytes.TrimSpace(raw), '\n'))
		if o.OnRead != nil {
			o.OnRead(r)
		}
	})
	if err != nil {
		return err
	}
	if err := rcv.Start(ctx); err != nil {
		return fmt.Errorf("start receiver: %w", err)
	}
	defer rcv.Close(context.WithoutCancel(ctx))

	cfg := demoConfig(brokerURL, clip, slave.Name(), o.Work)
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("demo config: %w", err)
	}
	return NewAgent(cfg, o.Log).Run(ctx, RunOptions{UntilEOF: true, DrainTimeout: 60 * time.Second})
}

// demoConfig is what an installer's file would say for this set-up.
func demoConfig(broker, clip, gnssPort, work string) Config {
	cfg := DefaultConfig()
	cfg.Device = "demo-0001"
	rt := true
	cfg.Cameras = []CameraConfig{{Name: "front", Kind: "file", Path: clip, Realtime: &rt, Queue: 4}}
	cfg.Recognize = defaultRecognizeConfig()
	cfg.Recognize.Region = "us"
	cfg.GNSS = GNSSConfig{Port: gnssPort, Baud: 9600, StaleAfter: 3 * time.Second}
	cfg.Spool.Path = filepath.Join(work, "spool.db")
	cfg.Uplink.Broker = broker
	cfg.Uplink.Insecure = true // loopback broker of the demo only
	cfg.Uplink.ResendAfter = 5 * time.Second
	return cfg
}

// feedNMEA writes a receiver log as the receiver would: epoch by epoch, at
// the pace of the UTC times in its sentences. Comment lines are skipped.
func feedNMEA(ctx context.Context, w io.Writer, log []byte) error {
	var last time.Duration = -1
	sc := bufio.NewScanner(bytes.NewReader(log))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if tod, ok := sentenceTime(line); ok {
			if last >= 0 && tod > last {
				gap := min(tod-last, 2*time.Second)
				select {
				case <-time.After(gap):
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			last = tod
		}
		if _, err := io.WriteString(w, line+"\r\n"); err != nil {
			return fmt.Errorf("write pty: %w", err)
		}
	}
	return sc.Err()
}

// sentenceTime is the UTC time of day of an RMC or GGA sentence.
func sentenceTime(line string) (time.Duration, bool) {
	f := strings.Split(line, ",")
	if len(f) < 2 || len(f[0]) < 6 {
		return 0, false
	}
	typ := f[0][len(f[0])-3:]
	if typ != "RMC" && typ != "GGA" {
		return 0, false
	}
	t := f[1]
	if len(t) < 6 {
		return 0, false
	}
	h, e1 := strconv.Atoi(t[0:2])
	m, e2 := strconv.Atoi(t[2:4])
	s, e3 := strconv.ParseFloat(t[4:], 64)
	if e1 != nil || e2 != nil || e3 != nil {
		return 0, false
	}
	return time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(s*float64(time.Second)), true
}
