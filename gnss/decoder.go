package gnss

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	nmea "github.com/adrianmo/go-nmea"
)

// maxSentence bounds a candidate sentence. NMEA 0183 allows 82 characters;
// proprietary sentences of some receivers are longer, so we are lenient, but a
// bound keeps a run of binary data from being buffered as one "sentence".
const maxSentence = 256

const (
	msPerDay    = 24 * 3600 * 1000
	knotsToMPS  = 1852.0 / 3600.0
	kmhToMPS    = 1000.0 / 3600.0
	stickyGSAMs = 5000 // how long a GSA fix type is trusted for epochs without GSA
)

// DecoderStats counts what a Decoder has seen. All counts are cumulative.
type DecoderStats struct {
	Sentences    uint64 // sentences with a good checksum (used or not)
	BadChecksum  uint64 // sentences dropped for a wrong or missing checksum
	Unparsed     uint64 // good-checksum sentences of a used type (RMC, GGA, ...) whose fields did not parse
	Ignored      uint64 // good-checksum sentences that carry nothing we use (GSV, TXT, proprietary, AIS...)
	SkippedBytes uint64 // bytes outside any sentence: binary frames, noise, comment lines, overlong lines
	Comments     uint64 // '#' comment lines
	Fixes        uint64 // fixes returned by Next
	NoFix        uint64 // completed epochs without a usable fix (mode < 2, no position)
	NoDate       uint64 // epochs with a position dropped because no date was known yet
	Duplicates   uint64 // epochs dropped because their time repeated the previous fix's
}

// Decoder reads raw receiver output and returns one Fix per navigation epoch.
//
// Input may mix NMEA sentences of any talker (GP, GN, GL, GA, BD, ...) with
// binary protocol frames (UBX, SiRF, ...), '#' comment lines and noise; bytes
// outside sentences are skipped until the next '$'. Sentences with a bad or
// missing checksum are dropped and counted.
//
// Sentences of one epoch (same UTC time of day) are merged; the fix is
// emitted once the epoch is complete. A Decoder is not safe for concurrent
// use.
type Decoder struct {
	r      *bufio.Reader
	parser nmea.SentenceParser
	err    error // sticky: returned by every Next once set
	stats  DecoderStats

	lineStart bool
	buf       []byte

	cur   epoch
	ready []readyFix

	// Date anchor: the last date known and the time of day it belongs to.
	date    civilDate
	dateTOD int

	// Last GSA fix type and the time of day it was seen (for epochs without GSA).
	gsaMode int
	gsaTOD  int

	lastFix   time.Time // time of the last emitted fix (duplicates are dropped)
	closedTOD int       // time of day of an epoch closed early; its late sentences are dropped
	endKey    string    // sentence that closed the previous epochs
	endStreak int       // how many consecutive epochs endKey closed

	// now, when set, stamps the local arrival time of each epoch (Receiver).
	now func() time.Time
	// onSentence, when set, is called after each candidate sentence (good or bad).
	onSentence func(ok bool)
	// onUnparsed, when set, sees sentences go-nmea rejected (debugging).
	onUnparsed func(s string, err error)
}

type readyFix struct {
	fix  Fix
	seen time.Time
}

type civilDate struct {
	y, m, d int
}

func (c civilDate) valid() bool { return c.y != 0 }

// epoch accumulates what the sentences of one navigation epoch say.
type epoch struct {
	tod     int // ms since midnight; -1 while no timed sentence was seen
	used    bool
	seen    time.Time
	counts  map[string]int
	lastKey string

	date civilDate

	lat, lon float64
	posRank  int // 0 = no position; higher ranks win (GGA > GNS > RMC > GLL)

	alt    float64
	hasAlt bool

	speed, track       float64
	hasSpeed, hasTrack bool
	vtgSpeed, vtgTrack float64
	hasVTGSpd, hasVTGT bool

	hdop, gsaHDOP float64
	sats, gsaSats int

	gsaMode   int  // 0 unknown, else 1..3
	ggaQual   int  // -1 unknown
	ggaNoSats bool // GGA says 0 satellites used
	gnsFix    int  // -1 unknown, 0 no fix, 1 fix
	rmcStatus byte
	gllStatus byte
}

func newEpoch() epoch {
	return epoch{tod: -1, ggaQual: -1, gnsFix: -1}
}

// NewDecoder returns a Decoder reading from r. The Decoder buffers r.
func NewDecoder(r io.Reader) *Decoder {
	d := &Decoder{
		r:         bufio.NewReaderSize(r, 4096),
		lineStart: true,
		buf:       make([]byte, 0, maxSentence),
		cur:       newEpoch(),
		dateTOD:   -1,
		gsaTOD:    -1,
		closedTOD: -1,
	}
	// The checksum is verified before go-nmea sees a sentence, so that bad
	// checksums are counted apart from unparsable fields.
	d.parser.CheckCRC = func(nmea.BaseSentence, string) error { return nil }
	d.parser.CustomParsers = lenientParsers()
	return d
}

// Stats returns the counters so far.
func (d *Decoder) Stats() DecoderStats { return d.stats }

// Next returns the next fix. It returns io.EOF at the end of input (after the
// last epoch has been flushed) and never returns a Fix with Mode < 2. Any
// other read error is returned wrapped; errors are sticky.
func (d *Decoder) Next() (Fix, error) {
	f, _, err := d.next()
	return f, err
}

// next is Next that also returns the local arrival time of the epoch's first
// sentence (zero unless d.now is set).
func (d *Decoder) next() (Fix, time.Time, error) {
	for {
		if len(d.ready) > 0 {
			r := d.ready[0]
			d.ready = d.ready[1:]
			d.stats.Fixes++
			return r.fix, r.seen, nil
		}
		if d.err != nil {
			return Fix{}, time.Time{}, d.err
		}
		s, err := d.readSentence()
		if s != "" {
			d.handle(s)
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				d.finish()
				d.err = io.EOF
			} else {
				d.err = fmt.Errorf("read nmea: %w", err)
			}
		}
	}
}

// readSentence returns the next candidate sentence (from '$' or '!' up to the
// line end, without it). Everything else is skipped and counted. A non-empty
// sentence may come with an error (input ended right after it).
func (d *Decoder) readSentence() (string, error) {
	for {
		b, err := d.r.ReadByte()
		if err != nil {
			return "", err
		}
		switch {
		case b == '$' || b == '!':
			if s, err := d.readBody(b); s != "" || err != nil {
				return s, err
			}
		case b == '#' && d.lineStart:
			d.stats.Comments++
			n, err := d.skipLine()
			d.stats.SkippedBytes += uint64(n) + 1
			if err != nil {
				return "", err
			}
			d.lineStart = true
		case b == '\n' || b == '\r':
			d.lineStart = true
		default:
			d.lineStart = false
			d.stats.SkippedBytes++
		}
	}
}

// readBody reads after a sentence start. It returns "" (and nil) when what
// followed was not a sentence; its bytes are counted as skipped.
func (d *Decoder) readBody(start byte) (string, error) {
	d.buf = append(d.buf[:0], start)
	for {
		b, err := d.r.ReadByte()
		if err != nil {
			if len(d.buf) > 1 {
				return string(d.buf), err
			}
			d.stats.SkippedBytes++
			return "", err
		}
		switch {
		case b == '\r' || b == '\n':
			d.lineStart = true
			if len(d.buf) == 1 {
				d.stats.SkippedBytes++
				return "", nil
			}
			return string(d.buf), nil
		case b == '$' || b == '!':
			// A new start inside a sentence: what we had was a fragment.
			d.stats.SkippedBytes += uint64(len(d.buf))
			d.buf = append(d.buf[:0], b)
		case b < 0x20 || b > 0x7e || len(d.buf) >= maxSentence:
			d.stats.SkippedBytes += uint64(len(d.buf)) + 1
			d.lineStart = false
			return "", nil
		default:
			d.buf = append(d.buf, b)
		}
	}
}

func (d *Decoder) skipLine() (int, error) {
	n := 0
	for {
		b, err := d.r.ReadByte()
		if err != nil {
			return n, err
		}
		if b == '\n' {
			return n, nil
		}
		n++
	}
}

// usedTypes are the sentence types that feed a fix.
var usedTypes = map[string]bool{
	nmea.TypeRMC: true, nmea.TypeGGA: true, nmea.TypeGSA: true, nmea.TypeVTG: true,
	nmea.TypeGNS: true, nmea.TypeGLL: true, nmea.TypeZDA: true,
}

// handle checks and dispatches one candidate sentence.
func (d *Decoder) handle(s string) {
	s = strings.TrimRight(s, " \t")
	ok := checksumOK(s)
	if d.onSentence != nil {
		defer d.onSentence(ok)
	}
	if !ok {
		d.stats.BadChecksum++
		return
	}
	d.stats.Sentences++
	if s[0] != '$' {
		d.stats.Ignored++ // encapsulated (AIS) data
		return
	}
	addr, _, _ := strings.Cut(s[1:], ",")
	if len(addr) != 5 || addr[0] == 'P' || !usedTypes[addr[2:]] {
		d.stats.Ignored++
		return
	}
	sent, err := d.parser.Parse(s)
	if err != nil {
		d.stats.Unparsed++
		if d.onUnparsed != nil {
			d.onUnparsed(s, err)
		}
		return
	}
	d.apply(sent)
}

// checksumOK reports whether s ("$...*HH") carries a matching checksum.
func checksumOK(s string) bool {
	star := strings.LastIndexByte(s, '*')
	if star < 1 || len(s)-star != 3 {
		return false
	}
	var sum byte
	for i := 1; i < star; i++ {
		sum ^= s[i]
	}
	hi, ok1 := unhex(s[star+1])
	lo, ok2 := unhex(s[star+2])
	return ok1 && ok2 && sum == hi<<4|lo
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

func todOf(t nmea.Time) int {
	if !t.Valid {
		return -1
	}
	v := ((t.Hour*60+t.Minute)*60+t.Second)*1000 + t.Millisecond
	if t.Hour > 23 || t.Minute > 59 || t.Second > 60 || v < 0 || v >= msPerDay+1000 {
		return -1
	}
	return v
}

func fieldSet(fs []string, i int) bool { return i < len(fs) && fs[i] != "" }

// apply merges one parsed sentence into the current epoch.
func (d *Decoder) apply(s nmea.Sentence) {
	key := s.Prefix()
	switch m := s.(type) {
	case nmea.ZDA:
		// ZDA only dates epochs: some receivers send it at a different
		// instant than the fix sentences, so it must not split epochs.
		tod := todOf(m.Time)
		if tod < 0 || m.Day < 1 || m.Day > 31 || m.Month < 1 || m.Month > 12 || m.Year < 1980 || m.Year > 9999 {
			return
		}
		cd := civilDate{int(m.Year), int(m.Month), int(m.Day)}
		d.date, d.dateTOD = cd, tod
		if d.cur.tod == tod {
			d.cur.date = cd
		}
		return
	case nmea.RMC:
		if !d.timed(key, todOf(m.Time)) {
			return
		}
		e := &d.cur
		if m.Date.Valid && m.Date.MM >= 1 && m.Date.MM <= 12 && m.Date.DD >= 1 && m.Date.DD <= 31 {
			y := 2000 + m.Date.YY
			if m.Date.YY >= 80 {
				y = 1900 + m.Date.YY
			}
			e.date = civilDate{y, m.Date.MM, m.Date.DD}
		}
		e.rmcStatus = 'V'
		if m.Validity == nmea.ValidRMC {
			e.rmcStatus = 'A'
		}
		if fieldSet(m.Fields, 2) && fieldSet(m.Fields, 4) {
			e.setPos(2, m.Latitude, m.Longitude)
		}
		if fieldSet(m.Fields, 6) {
			e.speed, e.hasSpeed = m.Speed*knotsToMPS, true
		}
		if fieldSet(m.Fields, 7) {
			e.track, e.hasTrack = m.Course, true
		}
	case nmea.GGA:
		if !d.timed(key, todOf(m.Time)) {
			return
		}
		e := &d.cur
		q := 0
		if m.FixQuality != "" {
			q = int(m.FixQuality[0] - '0')
		}
		e.ggaQual = q
		e.ggaNoSats = fieldSet(m.Fields, 6) && m.NumSatellites == 0
		if fieldSet(m.Fields, 1) && fieldSet(m.Fields, 3) {
			e.setPos(4, m.Latitude, m.Longitude)
		}
		if fieldSet(m.Fields, 8) {
			e.alt, e.hasAlt = m.Altitude, true
		}
		if fieldSet(m.Fields, 6) {
			e.sats = int(m.NumSatellites)
		}
		if fieldSet(m.Fields, 7) {
			e.hdop = m.HDOP
		}
	case nmea.GNS:
		if !d.timed(key, todOf(m.Time)) {
			return
		}
		e := &d.cur
		e.gnsFix = 0
		for _, c := range m.Mode {
			if c != nmea.NoFixGNS {
				e.gnsFix = 1
			}
		}
		if fieldSet(m.Fields, 1) && fieldSet(m.Fields, 3) {
			e.setPos(3, m.Latitude, m.Longitude)
		}
		if fieldSet(m.Fields, 8) && !e.hasAlt {
			e.alt, e.hasAlt = m.Altitude, true
		}
		if fieldSet(m.Fields, 6) && e.sats == 0 {
			e.sats = int(m.SVs)
		}
		if fieldSet(m.Fields, 7) && e.hdop == 0 {
			e.hdop = m.HDOP
		}
	case nmea.GLL:
		tod := todOf(m.Time)
		if tod < 0 {
			return // old GLL without time: cannot be placed in an epoch
		}
		if !d.timed(key, tod) {
			return
		}
		e := &d.cur
		e.gllStatus = 'V'
		if m.Validity == nmea.ValidGLL {
			e.gllStatus = 'A'
		}
		if fieldSet(m.Fields, 0) && fieldSet(m.Fields, 2) {
			e.setPos(1, m.Latitude, m.Longitude)
		}
	case nmea.GSA:
		if !d.untimed(key) {
			return
		}
		e := &d.cur
		mode := 0
		switch m.FixType {
		case nmea.FixNone:
			mode = ModeNoFix
		case nmea.Fix2D:
			mode = Mode2D
		case nmea.Fix3D:
			mode = Mode3D
		}
		if mode > e.gsaMode { // GN receivers send one GSA per constellation
			e.gsaMode = mode
		}
		if fieldSet(m.Fields, 15) && e.gsaHDOP == 0 {
			e.gsaHDOP = m.HDOP
		}
		e.gsaSats += len(m.SV)
	case nmea.VTG:
		if !d.untimed(key) {
			return
		}
		e := &d.cur
		if fieldSet(m.Fields, 0) {
			e.vtgTrack, e.hasVTGT = m.TrueTrack, true
		}
		switch {
		case fieldSet(m.Fields, 4):
			e.vtgSpeed, e.hasVTGSpd = m.GroundSpeedKnots*knotsToMPS, true
		case fieldSet(m.Fields, 6):
			e.vtgSpeed, e.hasVTGSpd = m.GroundSpeedKPH*kmhToMPS, true
		}
	default:
		return
	}
	d.afterSentence(key)
}

func (e *epoch) setPos(rank int, lat, lon float64) {
	if rank < e.posRank || lat < -90 || lat > 90 || lon < -180 || lon > 180 {
		return
	}
	e.lat, e.lon, e.posRank = lat, lon, rank
}

// timed places a sentence carrying time of day tod: it closes the current
// epoch when tod differs from it. It reports false when the sentence must be
// dropped (no time, or it belongs to an epoch already closed).
func (d *Decoder) timed(key string, tod int) bool {
	if tod < 0 {
		return false
	}
	if tod == d.closedTOD {
		// Late sentence of an epoch closed early: the cycle was learned
		// wrong. Forget it and relearn.
		d.endKey, d.endStreak = "", 0
		return false
	}
	if d.cur.tod >= 0 && d.cur.tod != tod {
		d.closeEpoch()
	}
	d.closedTOD = -1
	d.cur.tod = tod
	d.mark(key)
	return true
}

// untimed places a sentence without time (GSA, VTG) in the current epoch. It
// reports false when the sentence arrives right after an epoch was closed
// early: receivers start an epoch with a timed sentence, so it belongs to the
// closed epoch and the learned cycle end was wrong.
func (d *Decoder) untimed(key string) bool {
	if d.closedTOD >= 0 {
		d.endKey, d.endStreak = "", 0
		return false
	}
	d.mark(key)
	return true
}

func (d *Decoder) mark(key string) {
	e := &d.cur
	if !e.used {
		e.used = true
		if d.now != nil {
			e.seen = d.now()
		}
		e.counts = make(map[string]int, 8)
	}
	e.counts[key]++
	e.lastKey = key
}

// afterSentence closes the epoch early when key is the sentence that closed
// the last two epochs (the receiver's cycle is learned).
func (d *Decoder) afterSentence(key string) {
	e := &d.cur
	if d.endStreak >= 2 && key == d.endKey && e.tod >= 0 && e.counts[key] == 1 {
		tod := e.tod
		d.closeEpoch()
		d.closedTOD = tod
	}
}

// finish flushes the pending epoch at the end of input.
func (d *Decoder) finish() {
	if d.cur.used && d.cur.tod >= 0 {
		d.closeEpoch()
	}
	d.cur = newEpoch()
}

// closeEpoch completes the current epoch, queues its fix if it has one and
// starts a new epoch.
func (d *Decoder) closeEpoch() {
	e := d.cur
	d.cur = newEpoch()
	if !e.used || e.tod < 0 {
		return
	}
	// Cycle learning: which sentence ends an epoch of this receiver.
	if e.counts[e.lastKey] == 1 && e.lastKey == d.endKey {
		d.endStreak++
	} else if e.counts[e.lastKey] == 1 {
		d.endKey, d.endStreak = e.lastKey, 1
	} else {
		d.endKey, d.endStreak = "", 0
	}

	if e.gsaMode > 0 {
		d.gsaMode, d.gsaTOD = e.gsaMode, e.tod
	}
	mode := d.mode(&e)

	// Date: the epoch's own (RMC), else the anchor, rolled over midnight.
	date := e.date
	if date.valid() {
		d.date, d.dateTOD = date, e.tod
	} else if d.date.valid() {
		date = d.date
		if e.tod+msPerDay/2 < d.dateTOD {
			date = addDay(date)
		}
	}

	if mode < Mode2D || e.posRank == 0 {
		d.stats.NoFix++
		return
	}
	if !date.valid() {
		d.stats.NoDate++
		return
	}
	if !e.date.valid() {
		d.date, d.dateTOD = date, e.tod
	}
	f := Fix{
		Time: time.Date(date.y, time.Month(date.m), date.d, 0, 0, 0, 0, time.UTC).
			Add(time.Duration(e.tod) * time.Millisecond),
		Mode:   mode,
		Lat:    e.lat,
		Lon:    e.lon,
		AltM:   e.alt,
		HasAlt: e.hasAlt,
		HDOP:   e.hdop,
		Sats:   e.sats,
	}
	if mode == Mode2D {
		f.HasAlt, f.AltM = false, 0
	}
	switch {
	case e.hasSpeed:
		f.SpeedMPS = e.speed
	case e.hasVTGSpd:
		f.SpeedMPS = e.vtgSpeed
	}
	switch {
	case e.hasTrack:
		f.TrackDeg = e.track
	case e.hasVTGT:
		f.TrackDeg = e.vtgTrack
	}
	if f.HDOP == 0 {
		f.HDOP = e.gsaHDOP
	}
	if f.Sats == 0 {
		f.Sats = e.gsaSats
	}
	if f.Time.Equal(d.lastFix) {
		d.stats.Duplicates++
		return
	}
	d.lastFix = f.Time
	d.ready = append(d.ready, readyFix{fix: f, seen: e.seen})
}

// mode decides the fix mode of a completed epoch: GSA's fix type when the
// epoch has one, else GGA/GNS quality, else RMC/GLL status. RMC status V,
// GGA quality 0 (invalid), 7 (manual) and 8 (simulator) always mean no fix;
// so does a GGA fix from zero satellites unless a GSA reports a fix.
func (d *Decoder) mode(e *epoch) int {
	switch {
	case e.rmcStatus == 'V':
		return ModeNoFix
	case e.ggaQual == 0 || e.ggaQual == 7 || e.ggaQual == 8:
		// No fix, manual input or simulator: nothing to stamp a read with.
		return ModeNoFix
	}
	if e.gsaMode > 0 {
		return e.gsaMode
	}
	if e.ggaQual > 0 && e.ggaNoSats {
		// Without a GSA to vouch for it, a GGA "fix" from zero satellites
		// is a held or dead-reckoned position.
		return ModeNoFix
	}
	valid := -1 // -1 unknown, 0 no, 1 yes
	switch {
	case e.ggaQual >= 0:
		valid = b2i(e.ggaQual > 0)
	case e.gnsFix >= 0:
		valid = e.gnsFix
	case e.rmcStatus == 'A' || e.gllStatus == 'A':
		valid = 1
	case e.gllStatus == 'V':
		valid = 0
	}
	if valid <= 0 {
		return ModeNoFix
	}
	// No GSA this epoch: trust a recent one for 2D/3D.
	if d.gsaMode >= Mode2D && d.gsaTOD >= 0 && absInt(e.tod-d.gsaTOD) <= stickyGSAMs {
		return d.gsaMode
	}
	if e.hasAlt {
		return Mode3D
	}
	return Mode2D
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func absInt(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

func addDay(c civilDate) civilDate {
	t := time.Date(c.y, time.Month(c.m), c.d, 0, 0, 0, 0, time.UTC).AddDate(0, 0, 1)
	return civilDate{t.Year(), int(t.Month()), t.Day()}
}
