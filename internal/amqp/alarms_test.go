package amqp

import (
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wharfmq/wharf/internal/alarm"
	"github.com/wharfmq/wharf/internal/amqp/wire"
	"github.com/wharfmq/wharf/internal/broker"
)

// startAlarmServer serves AMQP on a broker whose memory alarm is set at
// 1000 bytes of used, checked only when the test calls Check.
func startAlarmServer(t *testing.T, used *atomic.Uint64) *testServer {
	t.Helper()
	b, err := broker.Open(broker.Options{DataDir: t.TempDir(), Logger: testLogger(), Alarms: alarm.Options{
		MemoryHighWatermark: 1000, Interval: time.Hour, MemoryInUse: used.Load,
	}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Close()
		t.Fatal(err)
	}
	ts := &testServer{t: t, b: b, srv: NewServer(b, Options{Logger: testLogger()}), addr: ln.Addr().String(), serveCh: make(chan error, 1)}
	ts.url = "amqp://guest:guest@" + ts.addr + "/"
	go func() { ts.serveCh <- ts.srv.Serve(ln) }()
	t.Cleanup(ts.stop)
	return ts
}

// alarmClient handshakes as guest with the given capabilities and
// heartbeat, opens channel 1 in confirm mode and declares queue q.
func alarmClient(t *testing.T, ts *testServer, caps wire.Table, heartbeat uint16) (*rawClient, uint32) {
	t.Helper()
	r := dialRaw(t, ts.addr)
	r.start()
	r.startOk("PLAIN", plainResponse("guest", "guest"), caps)
	tune := rawExpect[*wire.ConnectionTune](r, 0)
	r.open(&wire.ConnectionTuneOk{ChannelMax: tune.ChannelMax, FrameMax: tune.FrameMax, Heartbeat: heartbeat}, "/")
	r.openChannel(1)
	r.sendMethod(1, &wire.QueueDeclare{Queue: "q"})
	rawExpect[*wire.QueueDeclareOk](r, 1)
	r.sendMethod(1, &wire.ConfirmSelect{})
	rawExpect[*wire.ConfirmSelectOk](r, 1)
	return r, tune.FrameMax
}

// TestBlockedConnection: a publishing connection is sent connection.blocked
// when the alarm goes off; a publish under the alarm is not read past its
// method frame, and the client's heartbeats are not expected meanwhile
// (it stays open through more than two silent intervals); when the alarm
// clears it gets connection.unblocked and then the publish's confirm. A
// client without the connection.blocked capability is blocked the same way
// but told nothing.
func TestBlockedConnection(t *testing.T) {
	t.Parallel()
	var used atomic.Uint64
	ts := startAlarmServer(t, &used)
	r, frameMax := alarmClient(t, ts, wire.Table{"connection.blocked": true}, 1)
	r.write(messageFrames(t, 1, &wire.BasicPublish{RoutingKey: "q"}, []byte("a"), frameMax))
	if ack := rawExpect[*wire.BasicAck](r, 1); ack.DeliveryTag != 1 {
		t.Fatalf("ack %+v", ack)
	}
	quiet, _ := alarmClient(t, ts, nil, 0) // no capability, no heartbeats

	used.Store(5000)
	ts.b.Alarms().Check()
	if m := rawExpect[*wire.ConnectionBlocked](r, 0); m.Reason != "low on memory" {
		t.Fatalf("connection.blocked reason %q", m.Reason)
	}
	r.write(messageFrames(t, 1, &wire.BasicPublish{RoutingKey: "q"}, []byte("b"), frameMax))
	quiet.write(messageFrames(t, 1, &wire.BasicPublish{RoutingKey: "q"}, []byte("c"), frameMax))
	// The server sends a heartbeat after each half interval without
	// writes; five of them span more than the two silent intervals after
	// which an unblocked client would be dropped.
	for hb := 0; hb < 5; {
		f, err := r.readFrame()
		if err != nil {
			t.Fatalf("blocked connection lost after %d heartbeats: %v", hb, err)
		}
		if f.Type != wire.FrameHeartbeat {
			t.Fatalf("got frame type %d on channel %d while blocked, want only heartbeats", f.Type, f.Channel)
		}
		hb++
	}
	if q, err := ts.b.Queue(broker.DefaultVhost, "", "q"); err != nil {
		t.Fatal(err)
	} else if n, _ := q.Counts(); n != 1 {
		t.Fatalf("queue holds %d messages while publishers are blocked, want 1", n)
	}

	used.Store(0)
	ts.b.Alarms().Check()
	rawExpect[*wire.ConnectionUnblocked](r, 0)
	if ack := rawExpect[*wire.BasicAck](r, 1); ack.DeliveryTag != 2 {
		t.Fatalf("ack after unblocking %+v", ack)
	}
	// The first thing the client without the capability hears is its
	// confirm.
	if ack := rawExpect[*wire.BasicAck](quiet, 1); ack.DeliveryTag != 1 {
		t.Fatalf("quiet client's ack %+v", ack)
	}
	if q, _ := ts.b.Queue(broker.DefaultVhost, "", "q"); q != nil {
		if n, _ := q.Counts(); n != 3 {
			t.Fatalf("queue holds %d messages after the alarm, want 3", n)
		}
	}
}

// TestConnServerAdvertisesBlocked: connection.blocked is offered.
func TestConnServerAdvertisesBlocked(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	r := dialRaw(t, ts.addr)
	st := r.start()
	if caps, _ := st.ServerProperties["capabilities"].(wire.Table); caps["connection.blocked"] != true {
		t.Fatalf("capabilities %v: connection.blocked not offered", st.ServerProperties["capabilities"])
	}
}
