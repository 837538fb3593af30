package amqp

import (
	"fmt"
	"testing"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/wharfmq/wharf/internal/crashcopy"
)

// TestTxCommittedAcksSurviveCrash checks that tx.commit-ok means the
// transaction's acks are on disk: after a crash right after the commit,
// the acked messages do not come back, and every message that does is
// flagged redelivered (after a crash the broker cannot know which went
// out). Settlements outside transactions reach the disk once a second; a
// committed one must not wait for that.
func TestTxCommittedAcksSurviveCrash(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	c, ch := ts.channel(t)
	if _, err := ch.QueueDeclare("txcrash", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	confirms := itConfirmMode(t, ch, 16)
	for _, b := range itNames("m", 1, 12) {
		itPublish(t, ch, "", "txcrash", false, amqp091.Publishing{DeliveryMode: amqp091.Persistent, Body: []byte(b)})
	}
	itConfirms(t, confirms, 1, 12)

	tch, err := c.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := tch.Tx(); err != nil {
		t.Fatal(err)
	}
	// Three transactions of three acks each, a crash right after each
	// commit.
	var crashes []string
	for round := range 3 {
		for i := range 3 {
			d, ok, err := tch.Get("txcrash", false)
			if want := itNames("m", 3*round+i+1, 3*round+i+1)[0]; err != nil || !ok || string(d.Body) != want {
				t.Fatalf("get: %q ok=%v err=%v, want %s", d.Body, ok, err, want)
			}
			if err := d.Ack(false); err != nil {
				t.Fatal(err)
			}
		}
		if err := tch.TxCommit(); err != nil {
			t.Fatal(err)
		}
		crashes = append(crashes, crashcopy.Dir(t, ts.dir))
	}

	for round, dir := range crashes {
		after := &testServer{t: t, dir: dir}
		after.start()
		_, ach := after.channel(t)
		var want []itGot
		for _, b := range itNames("m", 3*round+4, 12) {
			want = append(want, itGot{b, true})
		}
		itSameGot(t, fmt.Sprintf("after a crash following commit %d", round+1), itDrainGot(t, ach, "txcrash"), want)
		after.stop()
	}
}

// TestAcksBeforeAReplySurviveCrash checks that a reply on a channel means
// the plain acks the client sent before it on that channel are on disk:
// after a crash right after basic.qos-ok (and after a basic.get-ok), the
// acked messages do not come back.
func TestAcksBeforeAReplySurviveCrash(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	c, ch := ts.channel(t)
	if _, err := ch.QueueDeclare("ackcrash", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	confirms := itConfirmMode(t, ch, 16)
	for _, b := range itNames("m", 1, 10) {
		itPublish(t, ch, "", "ackcrash", false, amqp091.Publishing{DeliveryMode: amqp091.Persistent, Body: []byte(b)})
	}
	itConfirms(t, confirms, 1, 10)

	cch, err := c.Channel()
	if err != nil {
		t.Fatal(err)
	}
	get := func(want string) amqp091.Delivery {
		t.Helper()
		d, ok, err := cch.Get("ackcrash", false)
		if err != nil || !ok || string(d.Body) != want {
			t.Fatalf("get: %q ok=%v err=%v, want %s", d.Body, ok, err, want)
		}
		return d
	}
	// Acks of m1-m3, then basic.qos: its reply proves them received.
	for _, b := range itNames("m", 1, 3) {
		if err := get(b).Ack(false); err != nil {
			t.Fatal(err)
		}
	}
	if err := cch.Qos(5, 0, false); err != nil {
		t.Fatal(err)
	}
	afterQos := crashcopy.Dir(t, ts.dir)
	// Ack of m4 (multiple), then basic.get-ok of m5: m4 is settled for good.
	if err := get("m4").Ack(true); err != nil {
		t.Fatal(err)
	}
	get("m5")
	afterGet := crashcopy.Dir(t, ts.dir)

	for _, tc := range []struct {
		dir  string
		from int
	}{{afterQos, 4}, {afterGet, 5}} {
		after := &testServer{t: t, dir: tc.dir}
		after.start()
		_, ach := after.channel(t)
		var want []itGot
		for _, b := range itNames("m", tc.from, 10) {
			want = append(want, itGot{b, true})
		}
		itSameGot(t, fmt.Sprintf("after a crash with m1-m%d acked", tc.from-1), itDrainGot(t, ach, "ackcrash"), want)
		after.stop()
	}
}
