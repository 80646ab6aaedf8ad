// Package boards owns the hardware around the camera that is not the camera:
// the board profile (GPIO pins for the IR illuminator, status LEDs and the
// ignition-sense input) and the temperatures the technician sees.
//
// Every peripheral is tri-state (the periph.io convention): loaded, absent
// (skipped and reported; the agent degrades) or broken (reported with why).
// A PC with no GPIO uses the "none" profile and still reports temperatures.
//
// The package is pure Go (periph.io) and is never imported by recognize or
// spool. Caveat: only the "none" and "auto" profiles exist so far; the
// Raspberry Pi pin maps arrive with the field I/O work.
package boards
