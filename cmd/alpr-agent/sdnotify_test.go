package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// listenNotify stands in for systemd: a unixgram socket at name (a path or
// @abstract) whose datagrams come out of the returned channel.
func listenNotify(t *testing.T, name string) <-chan string {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	out := make(chan string, 16)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(out)
				return
			}
			out <- string(buf[:n])
		}
	}()
	return out
}

func recv(t *testing.T, ch <-chan string) string {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(5 * time.Second):
		t.Fatal("no datagram on the notify socket")
		return ""
	}
}

func TestSdNotify(t *testing.T) {
	t.Run("Path", func(t *testing.T) {
		sock := filepath.Join(t.TempDir(), "notify")
		ch := listenNotify(t, sock)
		t.Setenv("NOTIFY_SOCKET", sock)
		if sent, err := sdNotify("READY=1\nSTATUS=reading plates"); !sent || err != nil {
			t.Fatalf("sent=%v err=%v", sent, err)
		}
		if got := recv(t, ch); got != "READY=1\nSTATUS=reading plates" {
			t.Errorf("got %q", got)
		}
	})
	t.Run("Abstract", func(t *testing.T) {
		name := fmt.Sprintf("@alpr-agent-test-%d-%d", os.Getpid(), time.Now().UnixNano())
		ch := listenNotify(t, name)
		t.Setenv("NOTIFY_SOCKET", name)
		if sent, err := sdNotify("STOPPING=1"); !sent || err != nil {
			t.Fatalf("sent=%v err=%v", sent, err)
		}
		if got := recv(t, ch); got != "STOPPING=1" {
			t.Errorf("got %q", got)
		}
	})
	t.Run("Unset", func(t *testing.T) {
		t.Setenv("NOTIFY_SOCKET", "")
		if sent, err := sdNotify("READY=1"); sent || err != nil {
			t.Fatalf("sent=%v err=%v, want a silent no-op", sent, err)
		}
	})
	t.Run("NoListener", func(t *testing.T) {
		if sent, err := sdNotifyTo(filepath.Join(t.TempDir(), "gone"), "READY=1"); sent || err == nil {
			t.Fatalf("sent=%v err=%v, want an error", sent, err)
		}
	})
	t.Run("Relative", func(t *testing.T) {
		if _, err := sdNotifyTo("notify", "READY=1"); err == nil {
			t.Fatal("a relative NOTIFY_SOCKET must be refused")
		}
	})
}

func TestSdWatchdogInterval(t *testing.T) {
	me := strconv.Itoa(os.Getpid())
	for _, c := range []struct {
		name      string
		usec, pid string
		want      time.Duration
	}{
		{"Unset", "", "", 0},
		{"Half", "60000000", "", 30 * time.Second},
		{"OurPID", "2000000", me, time.Second},
		{"OtherPID", "2000000", "1", 0},
		{"Garbage", "soon", "", 0},
		{"Zero", "0", "", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			env := map[string]string{"WATCHDOG_USEC": c.usec, "WATCHDOG_PID": c.pid}
			if got := sdWatchdogInterval(func(k string) string { return env[k] }); got != c.want {
				t.Errorf("got %v, want %v", got, c.want)
			}
		})
	}
}

func TestSdWatchdog_PingsUntilCancelled(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	ch := listenNotify(t, sock)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		sdWatchdog(ctx, 10*time.Millisecond, func(s string) (bool, error) { return sdNotifyTo(sock, s) })
		close(done)
	}()
	for i := 0; i < 3; i++ {
		if got := recv(t, ch); got != "WATCHDOG=1" {
			t.Fatalf("ping %d = %q", i, got)
		}
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("sdWatchdog did not return after cancel")
	}
}

// TestAgent_NotifiesSystemd: under a Type=notify unit the agent says READY=1
// once its stages run, pings the watchdog at half of WATCHDOG_USEC, and says
// STOPPING=1 when it begins to drain.
func TestAgent_NotifiesSystemd(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the recognizer")
	}
	cfg := loopingClipConfig(t)
	sock := filepath.Join(t.TempDir(), "notify")
	ch := listenNotify(t, sock)
	t.Setenv("NOTIFY_SOCKET", sock)
	t.Setenv("WATCHDOG_USEC", "100000") // a ping every 50 ms
	t.Setenv("WATCHDOG_PID", "")

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	done := make(chan error, 1)
	go func() { done <- NewAgent(cfg, silentLogger()).Run(ctx, RunOptions{DrainTimeout: 5 * time.Second}) }()
	next := func() string {
		select {
		case s := <-ch:
			return s
		case err := <-done:
			t.Fatalf("agent ended before notifying: %v", err)
		case <-time.After(time.Minute):
			t.Fatal("no notification within a minute")
		}
		return ""
	}
	if got := next(); !strings.HasPrefix(got, "READY=1\n") {
		t.Fatalf("first notification %q, want READY=1", got)
	}
	for i := 0; i < 2; i++ {
		if got := next(); got != "WATCHDOG=1" {
			t.Fatalf("notification %q, want WATCHDOG=1", got)
		}
	}
	stop()
	for got := next(); got != "STOPPING=1"; got = next() {
		if got != "WATCHDOG=1" {
			t.Fatalf("notification %q while stopping", got)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
}
