// Package gnss owns the GNSS receiver: the serial port, NMEA decoding, the
// Fix type, "where were we at frame time t" lookups and the clock offset
// between GNSS time and the local monotonic clock.
//
// # Parts
//
//   - Decoder turns raw receiver output (NMEA 0183 from any talker, possibly
//     interleaved with binary protocol frames, comment lines and corrupt
//     sentences) into one Fix per navigation epoch.
//   - History keeps recent fixes with their local receive times and answers
//     At(t) (interpolated position at a frame's capture time) and WallTime(t)
//     (UTC for a local monotonic time). It never blocks on the port.
//   - Receiver reads a serial port, reopens it with capped backoff when it is
//     absent or disappears, and feeds a History. With Config.Baud = BaudAuto
//     (the default) it detects the rate at every open: the last detected rate
//     first, then AutoBauds (4800, 9600, 38400, 115200), each for
//     DetectWindow, keeping the first where two checksummed sentences arrive
//     (what was read while probing is decoded, not lost). A long run of bytes
//     without a good sentence (16 KiB) makes it detect again. Status reports
//     the port state, the rate, bytes, good and bad sentences, the last
//     sentence time and the last fix.
//   - Replay and ReadPort are the helpers behind `alpr-agent gnss`.
//
// # Caveats
//
// A fix is emitted only once its epoch is complete: either the next epoch's
// time is seen, the end of input is reached, or the sentence that closed the
// previous two epochs arrives again (the decoder learns each receiver's cycle,
// so a steady receiver costs no extra epoch of latency).
//
// A fix is never emitted without a date: receivers that only send GGA get
// their date from RMC or ZDA, and epochs decoded before any date is known are
// dropped and counted (DecoderStats.NoDate).
//
// Mode rules follow gpsd where it matters for "is this a fix": RMC status V,
// GGA quality 0/7/8 and a GGA solution from zero satellites (unless a GSA of
// the epoch reports a fix) give no fix. Against gpsd's own decodes of its
// regression captures (../shared/datasets/nmea, TestDecoder_GpsdRegression)
// the decoder reproduces 99.3% of gpsd's fixes (time and lat/lon within
// 1e-6 degrees); the rest differ only because gpsd shifted one capture's date
// by 1024 GPS weeks.
//
// A silent or garbage-spewing receiver never blocks callers and never gives
// a made-up position: History.At extrapolates at most StaleAfter past the
// last fix, then answers ok=false with Stale set and the fix's Age.
//
// Baud detection opens the port once per tried rate (Config.Open; tests
// pass gnsstest.FakeReceiver, whose bytes depend on the rate, since a pty
// ignores it). A receiver sending only binary frames (NMEA disabled) is never
// "detected"; detection then retries with backoff and reports ErrNoBaud.
//
// Two-digit RMC years are read as 1980..2079. GPS week-rollover bugs of old
// receivers are not corrected.
//
// The package is pure Go and builds with CGO_ENABLED=0.
package gnss
