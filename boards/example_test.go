package boards_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/alpr-agent/alpr-agent/boards"
	"github.com/alpr-agent/alpr-agent/boards/boardstest"
)

func ExamplePatternFor() {
	for _, s := range []boards.Status{
		{Fix: true, UplinkUp: true},
		{Fix: true},
		{UplinkUp: true},
		{Fix: true, UplinkUp: true, Err: true},
	} {
		p := boards.PatternFor(s)
		fmt.Printf("%-11s %s\n", p.Name, p.Steps)
	}
	// Output:
	// ok          1111111111
	// uplink-down 1010000000
	// no-fix      1111100000
	// error       10
}

// The agent's use of a board, on fakes.
func TestBoard_AgentUse(t *testing.T) {
	b, f := boardstest.New(t, boards.Config{IRMode: boards.IRStrobe, Ignition: true, IgnitionHoldOff: time.Second})
	f.Pin(t, "GPIO17").Set(true) // ignition on
	b.SetStatus(boards.Status{Fix: true, UplinkUp: true})
	b.SetCapturing(true)
	b.FrameStart()
	f.Clock.Tick()
	if got := b.FrameInterval(40 * time.Millisecond); got != 40*time.Millisecond {
		t.Errorf("FrameInterval = %v", got)
	}
	select {
	case <-b.ShutdownRequested():
		t.Fatal("shutdown with ignition on")
	default:
	}
}
