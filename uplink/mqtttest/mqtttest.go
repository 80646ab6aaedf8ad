// Package mqtttest runs a real mosquitto broker for tests and demos.
//
// Start gives a test a broker on a free loopback port with a throwaway
// config (anonymous access, no persistence unless WithPersistence), stopped
// at t.Cleanup. Stop and Restart (same port) simulate an outage, Kill a
// crash (SIGKILL: nothing is saved), Reload a SIGHUP (mosquitto 2.0 re-reads
// its config file: ACL and password files, log settings, but not listeners
// or persistence). When mosquitto is not installed the test is skipped,
// unless CI=true, where it fails: CI must install it.
//
// StartProcess is the same without testing.TB, for demo programs.
package mqtttest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/alpr-agent/alpr-agent/internal/proctest"
)

// DefaultBinary is where Debian's mosquitto package installs the broker.
const DefaultBinary = "/usr/sbin/mosquitto"

// ErrNotInstalled is returned when the mosquitto binary cannot be found.
var ErrNotInstalled = errors.New("mosquitto not installed")

// Option changes how a broker is started.
type Option func(*options)

type options struct {
	binary  string
	extra   string
	persist bool
}

// WithBinary runs the mosquitto binary at path.
func WithBinary(path string) Option { return func(o *options) { o.binary = path } }

// WithConfig appends lines to the generated mosquitto.conf.
func WithConfig(lines string) Option { return func(o *options) { o.extra = lines } }

// WithPersistence makes the broker save sessions, subscriptions and queued
// QoS 1 messages to mosquitto.db in its directory: on Stop (SIGTERM) and
// every autosave_interval (default 1800 s; add a shorter one WithConfig).
// A Kill loses what was not saved yet.
func WithPersistence() Option { return func(o *options) { o.persist = true } }

// Broker is a running (or stopped) mosquitto process.
type Broker struct {
	dir  string
	port int
	opt  options

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	log    *proctest.LogBuffer
}

// Start starts mosquitto for t and stops it at t.Cleanup. It skips the test
// when mosquitto is missing and CI is not "true".
func Start(t testing.TB, opts ...Option) *Broker {
	t.Helper()
	b, err := newBroker(t.TempDir(), opts)
	if errors.Is(err, ErrNotInstalled) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("mqtttest: %v (CI=true: install the mosquitto package)", err)
		}
		t.Skipf("mqtttest: %v; install the mosquitto package to run this test", err)
	}
	if err != nil {
		t.Fatalf("mqtttest: %v", err)
	}
	if err := b.start(); err != nil {
		t.Fatalf("mqtttest: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Logf("mqtttest: stop broker: %v", err)
		}
	})
	return b
}

// StartProcess starts mosquitto with its config in dir (which must exist).
// The caller must Close it.
func StartProcess(dir string, opts ...Option) (*Broker, error) {
	b, err := newBroker(dir, opts)
	if err != nil {
		return nil, err
	}
	if err := b.start(); err != nil {
		return nil, err
	}
	return b, nil
}

func newBroker(dir string, opts []Option) (*Broker, error) {
	o := options{binary: DefaultBinary}
	for _, f := range opts {
		f(&o)
	}
	if _, err := os.Stat(o.binary); err != nil {
		p, lerr := exec.LookPath("mosquitto")
		if lerr != nil {
			return nil, fmt.Errorf("find %s: %w", o.binary, ErrNotInstalled)
		}
		o.binary = p
	}
	port, err := proctest.FreePort()
	if err != nil {
		return nil, err
	}
	b := &Broker{dir: dir, port: port, opt: o}
	persistence := "persistence false\n"
	if o.persist {
		persistence = fmt.Sprintf("persistence true\npersistence_location %s/\n", dir)
	}
	conf := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\n%slog_dest stderr\nlog_type error\nlog_type warning\n", port, persistence)
	if os.Geteuid() == 0 {
		// mosquitto drops root to user "mosquitto", who cannot read a
		// private temp dir.
		conf += "user root\n"
	}
	conf += o.extra + "\n"
	if err := os.WriteFile(b.confPath(), []byte(conf), 0o600); err != nil {
		return nil, fmt.Errorf("write mosquitto config: %w", err)
	}
	return b, nil
}

func (b *Broker) confPath() string { return filepath.Join(b.dir, "mosquitto.conf") }

// URL returns "tcp://127.0.0.1:PORT".
func (b *Broker) URL() string { return "tcp://" + b.Addr() }

// Addr returns "127.0.0.1:PORT".
func (b *Broker) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(b.port)) }

func (b *Broker) start() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd != nil {
		return nil
	}
	log := &proctest.LogBuffer{}
	cmd := exec.Command(b.opt.binary, "-c", b.confPath())
	cmd.Stdout = log
	cmd.Stderr = log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start mosquitto: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	// Wait until it accepts connections (or died).
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", b.Addr(), 200*time.Millisecond)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-exited:
			return fmt.Errorf("start mosquitto: exited early: %s", log.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("start mosquitto: no listener on %s after 10s: %s", b.Addr(), log.String())
		}
	}
	b.cmd, b.exited, b.log = cmd, exited, log
	return nil
}

// Stop terminates the broker; its port stays reserved for Restart. Stopping
// a stopped broker is a no-op.
func (b *Broker) Stop() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil {
		return nil
	}
	proctest.Stop(b.cmd.Process, b.exited, syscall.SIGTERM, 5*time.Second)
	b.cmd = nil
	return nil
}

// Kill ends the broker with SIGKILL, as a crash or power cut would: a
// persistent broker loses what it has not saved. Its port stays reserved
// for Restart. Killing a stopped broker is a no-op.
func (b *Broker) Kill() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil {
		return nil
	}
	_ = b.cmd.Process.Kill()
	<-b.exited
	b.cmd = nil
	return nil
}

// Pid returns the broker's process ID, 0 when it is stopped (for
// benchmarks that read its CPU time).
func (b *Broker) Pid() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil {
		return 0
	}
	return b.cmd.Process.Pid
}

// Reload sends SIGHUP: mosquitto re-reads its config file (ACL and password
// files among what 2.0 reloads) without dropping clients.
func (b *Broker) Reload() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil {
		return fmt.Errorf("reload mosquitto: not running")
	}
	if err := b.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		return fmt.Errorf("reload mosquitto: %w", err)
	}
	return nil
}

// Dir returns the directory holding mosquitto.conf (and mosquitto.db with
// WithPersistence); tests may put ACL files there.
func (b *Broker) Dir() string { return b.dir }

// Restart starts a stopped broker again on the same port. Without
// WithPersistence the new broker has no sessions: queued QoS 1 messages and
// subscriptions of the old one are gone.
func (b *Broker) Restart() error {
	if err := b.Stop(); err != nil {
		return err
	}
	return proctest.StartAgain(b.start)
}

// Log returns what the running broker wrote to stdout and stderr.
func (b *Broker) Log() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.log == nil {
		return ""
	}
	return b.log.String()
}

// Close stops the broker. It is idempotent.
func (b *Broker) Close() error { return b.Stop() }
