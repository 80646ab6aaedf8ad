package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"
)

// The unit is Type=notify with WatchdogSec= (packaging/alpr-agent.service):
// systemd counts the agent started only once it sends READY=1, and restarts
// it when WATCHDOG=1 stops arriving. This is the sd_notify(3) protocol in
// pure Go (one datagram on the unix socket named by $NOTIFY_SOCKET), so the
// binary does not link libsystemd. Outside systemd every call is a no-op.

// sdNotify sends state (e.g. "READY=1") to $NOTIFY_SOCKET. It returns false,
// nil when the variable is unset: not running under systemd is not an error.
func sdNotify(state string) (bool, error) {
	return sdNotifyTo(os.Getenv("NOTIFY_SOCKET"), state)
}

func sdNotifyTo(socket, state string) (bool, error) {
	if socket == "" {
		return false, nil
	}
	// "@name" is a socket in the abstract namespace: Go spells it with a
	// leading NUL, which net.UnixAddr does for a leading '@' itself.
	if socket[0] != '/' && socket[0] != '@' {
		return false, fmt.Errorf("sd_notify: NOTIFY_SOCKET %q is neither a path nor @abstract", socket)
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: socket, Net: "unixgram"})
	if err != nil {
		return false, fmt.Errorf("sd_notify: dial %s: %w", socket, err)
	}
	defer conn.Close()
	_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte(state)); err != nil {
		return false, fmt.Errorf("sd_notify: send %q: %w", state, err)
	}
	return true, nil
}

// sdWatchdogInterval is how often to send WATCHDOG=1: half of
// $WATCHDOG_USEC, as sd_watchdog_enabled(3) advises. Zero means no watchdog
// (unset, unparsable, or $WATCHDOG_PID names another process).
func sdWatchdogInterval(getenv func(string) string) time.Duration {
	usec, err := strconv.ParseInt(getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || usec <= 0 {
		return 0
	}
	if pid := getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return 0
	}
	return time.Duration(usec) * time.Microsecond / 2
}

// sdWatchdog sends WATCHDOG=1 every interval until ctx ends. The ticker runs
// in the agent's own goroutine scheduler, so a stalled process (deadlock in
// cgo, a wedged runtime) stops the pings and systemd restarts the unit.
func sdWatchdog(ctx context.Context, interval time.Duration, notify func(string) (bool, error)) {
	if interval <= 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_, _ = notify("WATCHDOG=1") // a lost ping is retried on the next tick
		}
	}
}

// sdReady tells systemd the agent is up (every stage started) and feeds
// the watchdog until the returned func is called; Run defers it, so the
// pings go on through the drain (which may take run --drain-timeout).
func (a *Agent) sdReady(ctx context.Context) (stop func()) {
	a.sdSend(fmt.Sprintf("READY=1\nSTATUS=reading plates on %d camera(s)", len(a.cfg.Cameras)))
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sdWatchdog(wctx, sdWatchdogInterval(os.Getenv), sdNotify)
	}()
	return func() { cancel(); <-done }
}

// sdSend sends one state and logs a failure: systemd would otherwise kill
// a Type=notify unit that never says READY without anyone knowing why.
func (a *Agent) sdSend(state string) {
	if _, err := sdNotify(state); err != nil {
		a.log.Warn("notify systemd", "err", err)
	}
}
