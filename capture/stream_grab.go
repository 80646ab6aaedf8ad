package capture

import (
	"context"
	"errors"
	"sync"
	"time"

	"gocv.io/x/gocv"
)

// errStalled and errGrab are wrapped by the sources into errors that name
// the device and wrap ErrDevice.
var (
	errStalled = errors.New("stalled")
	errGrab    = errors.New("read failed")
)

type grab struct {
	img gocv.Mat
	t   time.Time
	ok  bool
}

// grabber runs the blocking VideoCapture.Read on a goroutine, so that Read
// can return on ctx or on a stall while the cgo call, which nothing can
// interrupt, goes on. A grab that ends after its Read gave up is kept and
// returned by the next Read, so no Mat is leaked and no frame is reordered.
type grabber struct {
	mu     sync.Mutex
	vc     *gocv.VideoCapture
	busy   chan struct{} // closed when the in-flight grab ends; nil when idle
	result chan grab     // result of the in-flight grab (buffered 1)
}

// read waits for the next grab. It returns ctx.Err(), errStalled when no
// frame came within stall (0 = wait for ever), errGrab when OpenCV reports
// no frame, or ErrClosed.
func (g *grabber) read(ctx context.Context, stall time.Duration) (grab, error) {
	g.mu.Lock()
	if g.vc == nil {
		g.mu.Unlock()
		return grab{}, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		g.mu.Unlock()
		return grab{}, err
	}
	if g.busy == nil {
		g.busy = make(chan struct{})
		g.result = make(chan grab, 1)
		go runGrab(g.vc, g.busy, g.result)
	}
	busy, result := g.busy, g.result
	g.mu.Unlock()

	var timeout <-chan time.Time
	if stall > 0 {
		t := time.NewTimer(stall)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-ctx.Done():
		return grab{}, ctx.Err()
	case <-timeout:
		return grab{}, errStalled
	case <-busy:
	}
	gr := <-result
	g.mu.Lock()
	g.busy, g.result = nil, nil
	g.mu.Unlock()
	if !gr.ok {
		return grab{}, errGrab
	}
	return gr, nil
}

func runGrab(vc *gocv.VideoCapture, busy chan struct{}, result chan grab) {
	img := gocv.NewMat()
	ok := vc.Read(&img)
	t := time.Now()
	if !ok || img.Empty() {
		img.Close()
		result <- grab{}
	} else {
		result <- grab{img: img, t: t, ok: true}
	}
	close(busy)
}

// close releases the capture. An in-flight grab is waited for up to wait
// (wait < 0: for ever) and its frame closed. If it is still blocked after
// wait, the capture is abandoned to the grab goroutine, which releases it
// when the read returns; close then returns at once with a channel that is
// closed when that happens. It is idempotent.
func (g *grabber) close(wait time.Duration) (abandoned <-chan struct{}, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	vc := g.vc
	if vc == nil {
		return nil, nil
	}
	g.vc = nil
	busy, result := g.busy, g.result
	g.busy, g.result = nil, nil
	if busy != nil {
		if !waitClosed(busy, wait) {
			done := make(chan struct{})
			go func() {
				<-busy
				if gr := <-result; gr.ok {
					gr.img.Close()
				}
				vc.Close()
				close(done)
			}()
			return done, nil
		}
		if gr := <-result; gr.ok {
			gr.img.Close()
		}
	}
	return nil, vc.Close()
}

// waitClosed reports whether ch is closed within d (d < 0: for ever).
func waitClosed(ch <-chan struct{}, d time.Duration) bool {
	if d < 0 {
		<-ch
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-t.C:
		return false
	}
}
