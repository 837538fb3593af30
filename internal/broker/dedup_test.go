package broker

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"

	"github.com/wharfmq/wharf/internal/crashcopy"
)

// idProps encodes basic properties with a message_id (and, when set, the
// fields before it that have variable sizes, to be skipped).
func idProps(id string, withOthers bool) []byte {
	var flags uint16 = propMessageID
	var fields []byte
	if withOthers {
		flags |= propContentType | propHeaders | propDeliveryMode | propPriority | propCorrelationID | propReplyTo | propExpiration
		fields = append(fields, 1, 't')                                    // content-type
		fields = append(fields, 0, 0, 0, 3, 'x', 'y', 'z')                 // headers (opaque here)
		fields = append(fields, 2, 5)                                      // delivery-mode, priority
		fields = append(fields, 2, 'c', 'c', 0)                            // correlation-id, empty reply-to
		fields = append(fields, 8, '8', '6', '4', '0', '0', '0', '0', '0') // expiration: a day
	}
	out := binary.BigEndian.AppendUint16(nil, flags)
	out = append(out, fields...)
	out = append(out, byte(len(id)))
	return append(out, id...)
}

func TestPropertyMessageID(t *testing.T) {
	for _, others := range []bool{false, true} {
		if id, ok := propertyMessageID(idProps("m-1", others)); !ok || id != "m-1" {
			t.Fatalf("others %v: id %q, %v; want m-1", others, id, ok)
		}
	}
	for _, bad := range [][]byte{nil, {0x00, 0x80}, {0x00, 0x80, 0}, {0x00, 0x80, 3, 'a'}, {0x20, 0x80, 0, 0}, {0x01, 0x00, 1, 'x'}} {
		if id, ok := propertyMessageID(bad); ok {
			t.Fatalf("id of %x = %q, want none", bad, id)
		}
	}
}

func FuzzPropertyMessageID(f *testing.F) {
	f.Add(idProps("abc", false))
	f.Add(idProps("abc", true))
	f.Add([]byte{0xff, 0xfe})
	f.Fuzz(func(t *testing.T, props []byte) {
		id, ok := propertyMessageID(props)
		if ok && (id == "" || len(id) > maxMessageIDLen || len(id) >= len(props)) {
			t.Fatalf("id %q from %d bytes", id, len(props))
		}
	})
}

func FuzzDedupRecords(f *testing.F) {
	f.Add(encodeDedupRecord(encodeDedupRecord(nil, "a", 1), "bb", 2))
	f.Add([]byte{0, 1, 2})
	f.Fuzz(func(t *testing.T, buf []byte) {
		var next int64
		_ = decodeDedupRecords(buf, 0, func(id string, at, offset int64) {
			if id == "" || len(id) > maxMessageIDLen {
				t.Fatalf("record with id of %d bytes", len(id))
			}
		}, &next)
	})
}

func TestDedupRecordRoundTrip(t *testing.T) {
	buf := encodeDedupRecord(encodeDedupRecord(nil, "first", 10), "second", 20)
	type rec struct {
		id string
		at int64
	}
	var got []rec
	var next int64
	if err := decodeDedupRecords(buf, 0, func(id string, at, _ int64) { got = append(got, rec{id, at}) }, &next); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != (rec{"first", 10}) || got[1] != (rec{"second", 20}) {
		t.Fatalf("decoded %v", got)
	}
}

// dtAdmit admits id to w and resolves it as a successful publish kept in
// memory; it reports whether id was a duplicate.
func dtAdmit(w *dedupWindow, id string) bool {
	e, dup := w.admit(id)
	if !dup {
		w.resolve(e, true, nil, false)
	}
	return dup
}

func TestDedupWindowTrimsBySize(t *testing.T) {
	w := newDedupWindow(dedupConfig{size: 3}, nil, nil, nil, "test")
	for _, id := range []string{"a", "b", "c", "d"} {
		if dtAdmit(w, id) {
			t.Fatalf("%s admitted as a duplicate", id)
		}
	}
	if n := w.len(); n != 3 {
		t.Fatalf("window holds %d ids, want 3", n)
	}
	if !dtAdmit(w, "b") || !dtAdmit(w, "d") {
		t.Fatal("an id in the window was not a duplicate")
	}
	if dtAdmit(w, "a") {
		t.Fatal("the oldest id stayed in a full window")
	}
	// a came back as the newest, pushing b out.
	if dtAdmit(w, "b") {
		t.Fatal("b stayed in the window")
	}
}

func TestDedupWindowTrimsByTime(t *testing.T) {
	c := newTestClock()
	w := newDedupWindow(dedupConfig{size: 100, ttl: 1000}, nil, c.now, nil, "test")
	dtAdmit(w, "a")
	c.advance(600)
	dtAdmit(w, "b")
	c.advance(399)
	if !dtAdmit(w, "a") {
		t.Fatal("a left the window before its time")
	}
	c.advance(1) // a accepted 1000 ms ago; a duplicate did not renew it
	if dtAdmit(w, "a") {
		t.Fatal("a stayed in the window after its time")
	}
	if !dtAdmit(w, "b") {
		t.Fatal("b left the window before its time")
	}
	if n := w.len(); n != 2 {
		t.Fatalf("window holds %d ids, want 2", n)
	}
}

// TestDedupDuplicateFollowsOriginal: a duplicate admitted while the
// original publish is in flight waits for it, and fails with it; the id is
// then free again.
func TestDedupDuplicateFollowsOriginal(t *testing.T) {
	w := newDedupWindow(dedupConfig{size: 10}, nil, nil, nil, "test")
	orig, dup := w.admit("x")
	if dup {
		t.Fatal("first admission is a duplicate")
	}
	d, dup := w.admit("x")
	if !dup || d != orig {
		t.Fatal("second admission is not a duplicate of the first")
	}
	res := PublishResult{Duplicate: true, dedup: []*dedupEntry{d}}
	if !res.Durable() {
		t.Fatal("a duplicate of an unsettled publish does not wait")
	}
	w.resolve(orig, false, nil, false)
	if err := res.Wait(t.Context()); !errors.Is(err, ErrDuplicateOfFailed) {
		t.Fatalf("duplicate of a failed publish: Wait = %v", err)
	}
	if dtAdmit(w, "x") {
		t.Fatal("the id of a failed publish stayed in the window")
	}
	if !dtAdmit(w, "x") {
		t.Fatal("the id of a successful publish is not in the window")
	}
}

// dtPublish publishes a message with id through exchange (the default
// exchange routes to the queue named key) and waits for it.
func dtPublish(t *testing.T, b *Broker, exchange, key, id string, persistent bool) PublishResult {
	t.Helper()
	msg := &Message{Exchange: exchange, RoutingKey: key, Body: []byte(id), Persistent: persistent}
	if id != "" {
		msg.Properties = idProps(id, true)
	}
	res, err := b.Publish(DefaultVhost, exchange, []string{key}, nil, msg)
	if err != nil {
		t.Fatalf("publish %q: %v", id, err)
	}
	qtWait(t, res)
	return res
}

func dtDedupArgs(size int32) Table {
	return Table{ArgMessageDeduplication: true, ArgDedupWindowSize: size}
}

// TestDedupQueueSurvivesRestart: a durable queue remembers the ids of
// persistent messages across a clean restart, trimmed to its window, and
// forgets those of transient messages (which the restart dropped).
func TestDedupQueueSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	b := openTestBroker(t, dir)
	mustDeclareQueue(t, b, DefaultVhost, "c1", QueueSpec{Name: "q", Durable: true, Arguments: dtDedupArgs(3)})
	for _, id := range []string{"m1", "m2", "m3", "m4"} {
		dtPublish(t, b, "", "q", id, true)
	}
	dtPublish(t, b, "", "q", "t1", false)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = openTestBroker(t, dir)
	defer b.Close()
	q := qtQueue(t, b, "q")
	qtCounts(t, q, 4, 0)
	for _, id := range []string{"m3", "m4"} {
		dtPublish(t, b, "", "q", id, true)
	}
	qtCounts(t, q, 4, 0)
	for _, id := range []string{"t1", "m1"} {
		dtPublish(t, b, "", "q", id, true)
	}
	qtCounts(t, q, 6, 0)
}

// TestDedupExchangeSurvivesCrash: a confirmed persistent message's id is
// remembered by a durable exchange after a crash (a copy of the data
// directory taken while the broker runs).
func TestDedupExchangeSurvivesCrash(t *testing.T) {
	dir := t.TempDir()
	b := openTestBroker(t, dir)
	defer b.Close()
	mustDeclareExchange(t, b, DefaultVhost, ExchangeSpec{Name: "dx", Type: "fanout", Durable: true, Arguments: dtDedupArgs(100)})
	mustDeclareQueue(t, b, DefaultVhost, "c1", QueueSpec{Name: "q", Durable: true})
	mustBindQueue(t, b, DefaultVhost, "dx", "q", "", nil)
	if res := dtPublish(t, b, "dx", "", "once", true); res.Duplicate || res.Routed != 1 {
		t.Fatalf("first publish: %+v", res)
	}
	crashed := t.TempDir()
	crashcopy.Into(t, dir, crashed)

	c := openTestBroker(t, crashed)
	defer c.Close()
	if res := dtPublish(t, c, "dx", "", "once", true); !res.Duplicate || res.Routed != 0 {
		t.Fatalf("publish after the crash: %+v, want a duplicate", res)
	}
	qtCounts(t, qtQueue(t, c, "q"), 1, 0)
	if res := dtPublish(t, c, "dx", "", "", true); res.Duplicate {
		t.Fatal("a message without an id is a duplicate")
	}
	if res := dtPublish(t, c, "dx", "", "", true); res.Duplicate {
		t.Fatal("a message without an id is a duplicate")
	}
	qtCounts(t, qtQueue(t, c, "q"), 3, 0)
}

// TestDedupFullQueueForgetsID: a message a full queue refuses is not
// remembered, so its retry is enqueued once there is room.
func TestDedupFullQueueForgetsID(t *testing.T) {
	b := openTestBroker(t, t.TempDir())
	defer b.Close()
	args := dtDedupArgs(10)
	args["x-max-length"] = int32(1)
	args["x-overflow"] = "reject-publish"
	mustDeclareQueue(t, b, DefaultVhost, "c1", QueueSpec{Name: "q", Arguments: args})
	dtPublish(t, b, "", "q", "a", false)
	res, err := b.Publish(DefaultVhost, "", []string{"q"}, nil, &Message{RoutingKey: "q", Properties: idProps("b", false)})
	if err != nil || res.Rejected != 1 {
		t.Fatalf("publish to a full queue: %+v, %v", res, err)
	}
	if err := res.Wait(t.Context()); err == nil {
		t.Fatal("a refused publish waits successfully")
	}
	q := qtQueue(t, b, "q")
	qtGet(t, q, true)
	dtPublish(t, b, "", "q", "b", false)
	qtCounts(t, q, 1, 0)
	if d := qtGet(t, q, true); string(d.Message.Body) != "b" {
		t.Fatalf("got %q", d.Message.Body)
	}
}

// TestDedupLogCompacted: ids leaving the window move the log start, and
// the replayed window is the last ids only.
func TestDedupLogCompacted(t *testing.T) {
	dir := t.TempDir()
	b := openTestBroker(t, dir)
	mustDeclareQueue(t, b, DefaultVhost, "c1", QueueSpec{Name: "q", Durable: true, Arguments: dtDedupArgs(10)})
	n := 2*dedupCompactEvery + 5
	var last PublishResult
	for i := range n {
		id := "id-" + strconv.Itoa(i)
		res, err := b.Publish(DefaultVhost, "", []string{"q"}, nil, &Message{RoutingKey: "q", Properties: idProps(id, false), Persistent: true})
		if err != nil {
			t.Fatal(err)
		}
		last = res
	}
	qtWait(t, last)
	q := qtQueue(t, b, "q")
	q.dedup.wg.Wait()
	// The window is the last 10 ids admitted, some perhaps not written
	// yet when the start last moved.
	if start, _, _ := q.dedup.store.log.Offsets(); start < dedupCompactEvery-10 {
		t.Fatalf("log start %d after %d ids in a window of 10", start, n)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = openTestBroker(t, dir)
	defer b.Close()
	q = qtQueue(t, b, "q")
	if got := q.dedup.len(); got != 10 {
		t.Fatalf("replayed window holds %d ids, want 10", got)
	}
	if res := dtPublish(t, b, "", "q", "id-"+strconv.Itoa(n-1), true); !res.Durable() && len(res.dedup) != 1 {
		t.Fatalf("publish of the newest id: %+v", res)
	}
	qtCounts(t, q, n, 0)
	dtPublish(t, b, "", "q", "id-"+strconv.Itoa(n-11), true)
	qtCounts(t, q, n+1, 0)
}

// TestDedupStateDeleted: deleting a queue or exchange removes its
// deduplication log; a new exchange of the same name starts empty.
func TestDedupStateDeleted(t *testing.T) {
	dir := t.TempDir()
	b := openTestBroker(t, dir)
	defer b.Close()
	mustDeclareExchange(t, b, DefaultVhost, ExchangeSpec{Name: "dx", Type: "direct", Durable: true, Arguments: dtDedupArgs(10)})
	info := mustDeclareQueue(t, b, DefaultVhost, "c1", QueueSpec{Name: "q", Durable: true, Arguments: dtDedupArgs(10)})
	mustBindQueue(t, b, DefaultVhost, "dx", "q", "k", nil)
	dtPublish(t, b, "dx", "k", "a", true)
	qdir := filepath.Join(dir, dedupDirName, dedupQueueDirName(info.ID))
	xdir := filepath.Join(dir, dedupDirName, dedupExchangeDirName(DefaultVhost, "dx"))
	for _, d := range []string{qdir, xdir} {
		if _, err := os.Stat(d); err != nil {
			t.Fatalf("deduplication log: %v", err)
		}
	}
	if _, err := b.DeleteQueue(t.Context(), DefaultVhost, "c1", "q", QueueDeleteCheck{}); err != nil {
		t.Fatal(err)
	}
	if err := b.DeleteExchange(t.Context(), DefaultVhost, "dx", false); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{qdir, xdir} {
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("deduplication log of a deleted object: %v", err)
		}
	}
	mustDeclareExchange(t, b, DefaultVhost, ExchangeSpec{Name: "dx", Type: "direct", Durable: true, Arguments: dtDedupArgs(10)})
	mustDeclareQueue(t, b, DefaultVhost, "c1", QueueSpec{Name: "q2", Durable: true})
	mustBindQueue(t, b, DefaultVhost, "dx", "q2", "k", nil)
	if res := dtPublish(t, b, "dx", "k", "a", true); res.Duplicate {
		t.Fatal("a new exchange remembers its predecessor's ids")
	}
}

func TestDedupArguments(t *testing.T) {
	b := openTestBroker(t, t.TempDir())
	defer b.Close()
	for _, c := range []struct {
		args Table
		text string
	}{
		{Table{ArgMessageDeduplication: "yes"}, "invalid arg 'x-message-deduplication' for queue 'q' in vhost '/': {unacceptable_type,longstr}"},
		{Table{ArgMessageDeduplication: true, ArgDedupWindowSize: int32(0)}, "invalid arg 'x-deduplication-window-size' for queue 'q' in vhost '/': {value_zero,0}"},
		{Table{ArgMessageDeduplication: true, ArgDedupWindowSize: int64(MaxDedupWindowSize + 1)}, "invalid arg 'x-deduplication-window-size' for queue 'q' in vhost '/': {max_value_exceeded,10000001}"},
		{Table{ArgMessageDeduplication: true, ArgDedupWindowMs: "1s"}, "invalid arg 'x-deduplication-window-ms' for queue 'q' in vhost '/': \"expected integer, got longstr\""},
		{Table{ArgDedupWindowMs: int32(1000)}, "invalid arg 'x-deduplication-window-ms' for queue 'q' in vhost '/': window_but_no_deduplication"},
	} {
		_, _, err := b.DeclareQueue(t.Context(), DefaultVhost, "c1", QueueSpec{Name: "q", Arguments: c.args})
		wantModelError(t, err, ErrPreconditionFailed, c.text)
		_, err = b.DeclareExchange(t.Context(), DefaultVhost, ExchangeSpec{Name: "q", Type: "direct", Arguments: c.args})
		wantModelError(t, err, ErrPreconditionFailed, "")
	}
	mustDeclareQueue(t, b, DefaultVhost, "c1", QueueSpec{Name: "q", Arguments: dtDedupArgs(5)})
	_, _, err := b.DeclareQueue(t.Context(), DefaultVhost, "c1", QueueSpec{Name: "q", Arguments: dtDedupArgs(6)})
	wantModelError(t, err, ErrPreconditionFailed, "inequivalent arg 'x-deduplication-window-size' for queue 'q' in vhost '/': received '6' but current is '5'")
	mustDeclareExchange(t, b, DefaultVhost, ExchangeSpec{Name: "x", Type: "direct", Arguments: dtDedupArgs(5)})
	_, err = b.DeclareExchange(t.Context(), DefaultVhost, ExchangeSpec{Name: "x", Type: "direct"})
	wantModelError(t, err, ErrPreconditionFailed, "inequivalent arg 'x-message-deduplication' for exchange 'x' in vhost '/': received none but current is the value 'true' of type 'bool'")
	_, _, err = b.DeclareQueue(t.Context(), DefaultVhost, "c1", QueueSpec{Name: "s", Durable: true, Arguments: Table{"x-queue-type": "stream", ArgMessageDeduplication: true}})
	wantModelError(t, err, ErrPreconditionFailed, "")
	if cfg, ok := dedupConfigOf(Table{ArgMessageDeduplication: true}); !ok || cfg != (dedupConfig{size: DefaultDedupWindowSize}) {
		t.Fatalf("default window %+v", cfg)
	}
	if cfg, _ := dedupConfigOf(Table{ArgMessageDeduplication: true, ArgDedupWindowMs: int32(500)}); cfg != (dedupConfig{size: MaxDedupWindowSize, ttl: 500}) {
		t.Fatalf("time window %+v", cfg)
	}
}

// TestDeadLetterKeepsMessageID: a dead letter keeps its message_id, so
// deduplicating queues it reaches key on it, and the properties after it
// are split where they are.
func TestDeadLetterKeepsMessageID(t *testing.T) {
	// message_id "abc", timestamp 7, type "ty".
	props := []byte{0x00, 0xe0, 3, 'a', 'b', 'c', 0, 0, 0, 0, 0, 0, 0, 7, 2, 't', 'y'}
	if id, ok := propertyMessageID(props); !ok || id != "abc" {
		t.Fatalf("id %q, %v", id, ok)
	}
	for _, p := range [][]byte{props, idProps("abc", false)} {
		msg, _, _, err := deadLetterMessage("q", &dlxConfig{exchange: "dlx"}, deadLetter{msg: &Message{RoutingKey: "k", Properties: p}, reason: deathRejected}, newTestClock().now())
		if err != nil {
			t.Fatalf("dead-lettering: %v", err)
		}
		if id, ok := propertyMessageID(msg.Properties); !ok || id != "abc" {
			t.Fatalf("dead letter's message id %q, %v", id, ok)
		}
	}
	bp, err := splitProperties(props)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(bp.fields[10]); got != "\x02ty" {
		t.Fatalf("type field %q", got)
	}
}

// TestDedupFsyncFailureForgetsID: when a message's fsync fails, its id is
// not remembered, in memory or after a restart, and a duplicate published
// meanwhile fails with it; the retry is stored.
func TestDedupFsyncFailureForgetsID(t *testing.T) {
	dir := t.TempDir()
	b, fs := openFaultBroker(t, dir)
	mustDeclareQueue(t, b, DefaultVhost, "c1", QueueSpec{Name: "dq", Durable: true, Arguments: dtDedupArgs(10)})
	fs.FailSyncs(syscall.EIO, -1)
	var results []PublishResult
	for _, body := range []string{"f1", "f2"} {
		res, err := b.Publish(DefaultVhost, "", []string{"dq"}, nil, &Message{RoutingKey: "dq", Body: []byte(body), Persistent: true, Properties: idProps("f", false)})
		if err != nil {
			t.Fatal(err)
		}
		results = append(results, res)
	}
	for i, res := range results {
		if err := res.Wait(t.Context()); err == nil {
			t.Fatalf("publish %d under a failing fsync: Wait succeeded", i)
		}
	}
	fs.Clear()
	dtPublish(t, b, "", "dq", "f", true)
	dtPublish(t, b, "", "dq", "g", true)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = openTestBroker(t, dir)
	defer b.Close()
	dtPublish(t, b, "", "dq", "f", true)
	dtPublish(t, b, "", "dq", "g", true)
	if got := qtDrain(qtQueue(t, b, "dq")); !slices.Equal(got, []string{"f", "g"}) {
		t.Fatalf("queue holds %q, want [f g]", got)
	}
}

// TestDedupRecoversIDsFromQueueLogs: a crash after a persistent message's
// append is durable and before its id's record is leaves the message in
// its queue and its id out of the window's log. On open the ids of the
// recovered messages are remembered anyway, by the queue's window and by
// the window of the exchange they were published to, and written to the
// logs: a retry is a duplicate, also after a further restart.
func TestDedupRecoversIDsFromQueueLogs(t *testing.T) {
	dir := t.TempDir()
	b := openTestBroker(t, dir)
	mustDeclareQueue(t, b, DefaultVhost, "c1", QueueSpec{Name: "dq", Durable: true, Arguments: dtDedupArgs(100)})
	mustDeclareExchange(t, b, DefaultVhost, ExchangeSpec{Name: "dx", Type: "fanout", Durable: true, Arguments: dtDedupArgs(100)})
	mustDeclareQueue(t, b, DefaultVhost, "c1", QueueSpec{Name: "plain", Durable: true})
	mustBindQueue(t, b, DefaultVhost, "dx", "plain", "", nil)
	dtPublish(t, b, "", "dq", "q-id", true)
	dtPublish(t, b, "dx", "", "x-id", true)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	// The crash window: every id record lost, the messages kept.
	if err := os.RemoveAll(filepath.Join(dir, dedupDirName)); err != nil {
		t.Fatal(err)
	}
	for round := range 2 {
		b = openTestBroker(t, dir)
		dtPublish(t, b, "", "dq", "q-id", true)
		qtCounts(t, qtQueue(t, b, "dq"), 1, 0) // the retry was not stored again
		if res := dtPublish(t, b, "dx", "", "x-id", true); !res.Duplicate || res.Routed != 0 {
			t.Fatalf("round %d: exchange publish of a recovered id: %+v, want a duplicate", round, res)
		}
		qtCounts(t, qtQueue(t, b, "plain"), 1, 0)
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
