package gnsstest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"github.com/alpr-agent/alpr-agent/gnss"
)

// ErrUnplugged is what a FakeReceiver's ports fail with while unplugged.
var ErrUnplugged = errors.New("gnsstest: receiver unplugged")

// FakeReceiver is a GNSS receiver behind a fake serial port, for testing
// baud detection (a pty ignores the baud rate). Its Open is a gnss.OpenFunc:
// a port opened at the receiver's rate reads an endless drive as NMEA (one
// epoch per Read), a port opened at any other rate reads noise of the same
// length, as a UART at the wrong rate would. Reads are paced (Every) so a
// reader's time windows see a bounded number of bytes.
type FakeReceiver struct {
	Every time.Duration // pause before each Read; default 2ms

	mu        sync.Mutex
	baud      int
	silent    bool
	unplugged bool
	epoch     int
	opens     []int
	start     time.Time
}

// NewFakeReceiver returns a receiver talking at baud.
func NewFakeReceiver(baud int) *FakeReceiver {
	return &FakeReceiver{baud: baud, Every: 2 * time.Millisecond, start: time.Date(2026, 8, 5, 6, 0, 0, 0, time.UTC)}
}

// SetBaud reconfigures the receiver's rate (ports already open at the old
// rate now read noise).
func (f *FakeReceiver) SetBaud(b int) {
	f.mu.Lock()
	f.baud = b
	f.mu.Unlock()
}

// SetSilent stops (or resumes) the receiver's output.
func (f *FakeReceiver) SetSilent(s bool) {
	f.mu.Lock()
	f.silent = s
	f.mu.Unlock()
}

// Unplug makes open ports fail and opens fail until Plug.
func (f *FakeReceiver) Unplug() {
	f.mu.Lock()
	f.unplugged = true
	f.mu.Unlock()
}

// Plug undoes Unplug.
func (f *FakeReceiver) Plug() {
	f.mu.Lock()
	f.unplugged = false
	f.mu.Unlock()
}

// Opens returns the rates ports were opened at, in order.
func (f *FakeReceiver) Opens() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int(nil), f.opens...)
}

// Open is a gnss.OpenFunc.
func (f *FakeReceiver) Open(path string, baud int) (gnss.Port, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.unplugged {
		return nil, fmt.Errorf("open %s: %w", path, os.ErrNotExist)
	}
	f.opens = append(f.opens, baud)
	return &fakePort{f: f, baud: baud, closed: make(chan struct{})}, nil
}

// Fix returns the i-th epoch of the receiver's drive (10 Hz, heading east).
func (f *FakeReceiver) Fix(i int) gnss.Fix {
	return gnss.Fix{
		Time: f.start.Add(time.Duration(i) * 100 * time.Millisecond), Mode: gnss.Mode3D,
		Lat: 47.6, Lon: -122.3 + float64(i)*1e-5, AltM: 50, HasAlt: true,
		SpeedMPS: 7.5, TrackDeg: 90, HDOP: 0.8, Sats: 10,
	}
}

// next returns the bytes the receiver sends next as seen at rate baud.
func (f *FakeReceiver) next(baud int) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.unplugged {
		return nil, ErrUnplugged
	}
	if f.silent {
		return nil, nil
	}
	i := f.epoch
	f.epoch++
	var b []byte
	for _, s := range EpochSentences(f.Fix(i)) {
		b = append(b, Sentence(s)...)
	}
	if baud == f.baud {
		return b, nil
	}
	// Noise: what a UART sampling at the wrong rate makes of the bytes.
	r := rand.New(rand.NewPCG(uint64(baud), uint64(i)))
	for j := range b {
		b[j] = byte(r.Uint32())
	}
	return b, nil
}

type fakePort struct {
	f       *FakeReceiver
	baud    int
	mu      sync.Mutex
	timeout time.Duration
	pending []byte
	once    sync.Once
	closed  chan struct{}
}

var _ gnss.Port = (*fakePort)(nil)

func (p *fakePort) SetReadTimeout(t time.Duration) error {
	p.mu.Lock()
	p.timeout = t
	p.mu.Unlock()
	return nil
}

func (p *fakePort) Read(b []byte) (int, error) {
	p.mu.Lock()
	timeout := p.timeout
	p.mu.Unlock()
	if timeout <= 0 {
		timeout = time.Second
	}
	select {
	case <-p.closed:
		return 0, os.ErrClosed
	case <-time.After(p.f.Every):
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.pending) == 0 {
		data, err := p.f.next(p.baud)
		if err != nil {
			return 0, err
		}
		if data == nil { // silent: a read timeout
			p.mu.Unlock()
			select {
			case <-p.closed:
			case <-time.After(min(timeout, 20*time.Millisecond)):
			}
			p.mu.Lock()
			return 0, nil
		}
		p.pending = data
	}
	n := copy(b, p.pending)
	p.pending = p.pending[n:]
	return n, nil
}

func (p *fakePort) Close() error {
	p.once.Do(func() { close(p.closed) })
	return nil
}
