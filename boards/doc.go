// Package boards owns the hardware around the camera that is not the camera:
// the board profile (GPIO pins for the IR illuminator, status LEDs and the
// ignition-sense input), CPU temperature and the frame-rate throttle it
// suggests.
//
// # Profiles
//
// "none" (a PC: no GPIO, temperatures only), "rpi4" and "rpi5" (the
// RPiPins map in BCM numbering, overridable per pin in Config.Pins; "-"
// marks a pin not fitted) and "auto" (periph.io host drivers, then the
// Raspberry Pi map when the device-tree model names a Pi 4 or 5). Pins are
// found with periph's gpioreg.ByName and driven through gpio.PinIO, so tests
// inject gpiotest pins (Config.PinByName; see boardstest).
//
// # What the agent calls
//
//   - SetCapturing(bool) and FrameStart(): the IR illuminator in mode "on"
//     (lit while capturing) or "strobe" (one IRPulse per frame).
//   - SetStatus(Status{Fix, UplinkUp, Err}): the status LED pattern
//     (PatternFor: error > no fix > uplink down > ok); the error LED follows Err.
//   - ShutdownRequested(): closed once the ignition input stayed low for
//     IgnitionHoldOff (cruisers, Config.Ignition); shorter bounces do nothing.
//   - Throttle() / FrameInterval(nominal): a reduced frame rate while the
//     CPU is above ThrottleAboveC, with ThrottleHysteresisC of hysteresis.
//   - Peripherals(): each peripheral is tri-state (the periph.io
//     convention): loaded, absent (skipped and reported; the agent degrades)
//     or broken (reported with why). Start never fails for hardware.
//
// One goroutine (the board loop, 100ms ticks) drives the LED patterns,
// samples the ignition input and polls the temperature every TempPoll; its
// ticker is injectable (Config.NewTicker, AfterTick) so tests step it.
//
// # Caveats
//
// The ignition input is sampled every 100ms with a pull-down: a cut sense
// wire reads as ignition off. The strobe pulse is timed in software
// (time.AfterFunc), good to a millisecond or so, not to the exposure edge;
// a hardware trigger from the sensor would be better where one exists.
// Only what runs here is tested (gpiotest fakes, a fake sysfs): the real
// bcm283x (Pi 4) and gpio character device (Pi 5, RP1) drivers of
// periph.io are not.
//
// The package is pure Go (periph.io) and is never imported by recognize or
// spool.
package boards
