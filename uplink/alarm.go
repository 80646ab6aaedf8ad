package uplink

import (
	"fmt"
	"time"
)

// The receipt alarm. A broker answers PUBACK to a publish its ACL silently
// dropped, and a central receiver can be down while the broker is up: in
// both cases the uplink publishes happily and nothing is ever deleted. The
// spool keeps the reads (nothing is lost), but somebody has to look, so the
// uplink raises an alarm when records have been waiting for a receipt for
// Config.ReceiptAlarmAfter without any receipt arriving, shows it in
// Status.Alarm, and logs once at WARN when it rises and once at INFO when it
// clears (a receipt came, or nothing awaits one any more).
//
// The clock (waitingSince) starts at the first publish that is not followed
// by a receipt and restarts at every receipt while records still await
// theirs, so a slow but working central side never raises it. It is not
// stopped by a lost connection: records published before an outage still
// lack their receipt.
//
// All methods are called with u.mu held.

// alarmPublishedLocked notes that records were published and await a
// receipt.
func (u *Uplink) alarmPublishedLocked(now time.Time) {
	if u.cfg.ReceiptMode != ReceiptModeReceipt {
		return
	}
	if u.waitingSince.IsZero() {
		u.waitingSince = now
		u.publishedAtWait = u.st.Published
	}
}

// alarmReceiptLocked notes a receipt; outstanding tells whether published
// records still await theirs.
func (u *Uplink) alarmReceiptLocked(now time.Time, outstanding bool) {
	if outstanding {
		u.waitingSince = now
		u.publishedAtWait = u.st.Published
	} else {
		u.waitingSince = time.Time{}
	}
	u.clearAlarmLocked("receipt received")
}

// alarmIdleLocked notes that nothing is published and unreceipted and the
// queue had nothing to lease: no receipt is awaited.
func (u *Uplink) alarmIdleLocked() {
	u.waitingSince = time.Time{}
	u.clearAlarmLocked("nothing awaits a receipt")
}

// alarmCheckLocked raises the alarm when the wait is over
// ReceiptAlarmAfter.
func (u *Uplink) alarmCheckLocked(now time.Time, inflight int) {
	if u.st.Alarm != "" || u.waitingSince.IsZero() {
		return
	}
	waited := now.Sub(u.waitingSince)
	if waited < u.cfg.receiptAlarmAfter() {
		return
	}
	u.st.Alarm = fmt.Sprintf("no receipt for %v while published records await one "+
		"(%d in flight, %d publishes since): is the central receiver running, "+
		"and does the broker's ACL let this device publish to %s?",
		waited.Round(time.Second), inflight, u.st.Published-u.publishedAtWait,
		Topic(u.cfg.Device, TopicReads))
	u.st.AlarmSince = now
	u.log.Warn("receipt alarm", "reason", u.st.Alarm, "waiting_since", u.waitingSince)
}

func (u *Uplink) clearAlarmLocked(why string) {
	if u.st.Alarm == "" {
		return
	}
	u.log.Info("receipt alarm cleared", "why", why, "raised_for", time.Since(u.st.AlarmSince).Round(time.Millisecond))
	u.st.Alarm = ""
	u.st.AlarmSince = time.Time{}
}
