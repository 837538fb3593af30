package amqp

import (
	"sort"

	"github.com/wharfmq/wharf/internal/broker"
)

// unackedList holds a channel's unacknowledged deliveries in delivery tag
// order. Tags only grow, so it is a slice searched by binary search; settled
// entries are cut from the front as soon as everything before them is.
type unackedList struct {
	items []unackedEntry
	head  int
	live  int
}

type unackedEntry struct {
	tag uint64
	d   broker.Delivery
	at  int64 // when it was delivered, in milliseconds on the server's clock
	// timeout is how long it may stay unacknowledged, in milliseconds;
	// -1 for ever (timeout.go).
	timeout int64
	live    bool
	// stream is the consumer of a stream queue's delivery (d.Queue is
	// nil): settling it gives that consumer credit (stream.go).
	stream *streamConsumer
}

func newUnackedList() unackedList { return unackedList{} }

func (u *unackedList) len() int { return u.live }

func (u *unackedList) add(tag uint64, d broker.Delivery, at, timeout int64) {
	u.items = append(u.items, unackedEntry{tag: tag, d: d, at: at, timeout: timeout, live: true})
	u.live++
}

func (u *unackedList) find(tag uint64) int {
	rest := u.items[u.head:]
	i := sort.Search(len(rest), func(i int) bool { return rest[i].tag >= tag })
	if i < len(rest) && rest[i].tag == tag {
		return u.head + i
	}
	return -1
}

// has reports whether tag is unacknowledged.
func (u *unackedList) has(tag uint64) bool {
	i := u.find(tag)
	return i >= 0 && u.items[i].live
}

// take removes the delivery with tag.
func (u *unackedList) take(tag uint64) (unackedEntry, bool) {
	i := u.find(tag)
	if i < 0 || !u.items[i].live {
		return unackedEntry{}, false
	}
	e := u.items[i]
	u.items[i] = unackedEntry{tag: tag}
	u.live--
	u.trim()
	return e, true
}

// takeUpTo removes every delivery with a tag up to tag, in order.
func (u *unackedList) takeUpTo(tag uint64, dst []unackedEntry) []unackedEntry {
	for i := u.head; i < len(u.items) && u.items[i].tag <= tag; i++ {
		if u.items[i].live {
			dst = append(dst, u.items[i])
			u.items[i] = unackedEntry{tag: u.items[i].tag}
			u.live--
		}
	}
	u.trim()
	return dst
}

// takeAll removes every delivery, in order.
func (u *unackedList) takeAll() []unackedEntry {
	var out []unackedEntry
	for i := u.head; i < len(u.items); i++ {
		if u.items[i].live {
			out = append(out, u.items[i])
		}
	}
	*u = unackedList{}
	return out
}

// restore puts taken deliveries back (tx.rollback), in tag order.
func (u *unackedList) restore(es []unackedEntry) {
	all := append(u.takeAll(), es...)
	sort.Slice(all, func(i, j int) bool { return all[i].tag < all[j].tag })
	for _, e := range all {
		e.live = true
		u.items = append(u.items, e)
		u.live++
	}
}

func (u *unackedList) trim() {
	for u.head < len(u.items) && !u.items[u.head].live {
		u.head++
	}
	if u.head == len(u.items) {
		u.items, u.head = u.items[:0], 0
		return
	}
	if u.head > 1024 && u.head > len(u.items)/2 {
		n := copy(u.items, u.items[u.head:])
		clear(u.items[n:])
		u.items, u.head = u.items[:n], 0
	}
}
