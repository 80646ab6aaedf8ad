package main

import (
	"context"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"

	"github.com/alpr-agent/alpr-agent/boards"
	"github.com/alpr-agent/alpr-agent/boards/boardstest"
)

// TestAgent_IgnitionOffShutsDownCleanly: on a cruiser, the ignition input
// going low for the hold-off stops the agent as a SIGTERM would, and the IR
// illuminator is switched off with capture.
func TestAgent_IgnitionOffShutsDownCleanly(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the recognizer")
	}
	cfg := loopingClipConfig(t)
	cfg.Board = BoardConfig{Profile: "rpi4", SysfsRoot: t.TempDir(), IRMode: "on", Ignition: true, IgnitionHoldOff: 500 * time.Millisecond}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	pins := boardstest.NewPins(boards.RPiPins.IR, boards.RPiPins.StatusLED, boards.RPiPins.ErrorLED, boards.RPiPins.Ignition)
	ign := pins.Get(boards.RPiPins.Ignition)
	ign.Set(gpio.High) // engine running
	a := NewAgent(cfg, silentLogger())
	a.boardHook = func(c *boards.Config) { c.PinByName = pins.ByName }

	done := make(chan error, 1)
	go func() { done <- a.Run(context.Background(), RunOptions{DrainTimeout: 5 * time.Second}) }()
	ir := pins.Get(boards.RPiPins.IR)
	deadline := time.Now().Add(time.Minute)
	for ir.Level() != gpio.High {
		if time.Now().After(deadline) {
			t.Fatal("illuminator never switched on while capturing")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A bounce shorter than the hold-off does not stop the agent.
	ign.Set(gpio.Low)
	time.Sleep(100 * time.Millisecond)
	ign.Set(gpio.High)
	select {
	case err := <-done:
		t.Fatalf("agent stopped on a short bounce: %v", err)
	case <-time.After(time.Second):
	}
	ign.Set(gpio.Low) // ignition off for good
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("agent still running a minute after the ignition went off")
	}
	if ir.Level() != gpio.Low {
		t.Error("illuminator left on after shutdown")
	}
}
