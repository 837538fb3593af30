package broker

// routeScratch is the working memory of one Route call, reused from a pool
// so that routing allocates nothing but its result.
type routeScratch struct {
	words   []string                   // the words of a topic routing key
	dests   []*amqpBinding             // the bindings one exchange matched
	work    []*amqpExchange            // exchanges routed through, in order
	seenSet map[*amqpExchange]struct{} // the same, once there are many
	queues  []*amqpQueue               // queues routed to
	qset    map[*amqpQueue]struct{}    // the same, once there are many
	visited map[topicVisit]struct{}    // topic match states, with two or more '#'
}

// smallSet is how many exchanges or queues a route tracks by scanning a
// slice before it switches to a map.
const smallSet = 16

func (sc *routeScratch) reset() {
	sc.words = sc.words[:0]
	clear(sc.dests)
	sc.dests = sc.dests[:0]
	clear(sc.work)
	sc.work = sc.work[:0]
	clear(sc.queues)
	sc.queues = sc.queues[:0]
	if len(sc.seenSet) > 0 {
		clear(sc.seenSet)
	}
	if len(sc.qset) > 0 {
		clear(sc.qset)
	}
	if len(sc.visited) > 0 {
		clear(sc.visited)
	}
}

// seen records an exchange as routed through and reports whether it was
// already: every exchange is visited at most once per message, which ends
// cycles of exchange-to-exchange bindings and alternate exchanges.
func (sc *routeScratch) seen(x *amqpExchange) bool {
	if len(sc.work) <= smallSet {
		for _, w := range sc.work {
			if w == x {
				return true
			}
		}
		if len(sc.work) == smallSet {
			if sc.seenSet == nil {
				sc.seenSet = make(map[*amqpExchange]struct{}, 4*smallSet)
			}
			for _, w := range sc.work {
				sc.seenSet[w] = struct{}{}
			}
			sc.seenSet[x] = struct{}{}
		}
	} else {
		if _, ok := sc.seenSet[x]; ok {
			return true
		}
		sc.seenSet[x] = struct{}{}
	}
	sc.work = append(sc.work, x)
	return false
}

// addQueue appends q to dst unless this route already has it.
func (sc *routeScratch) addQueue(dst []QueueRef, q *amqpQueue) []QueueRef {
	if len(sc.queues) <= smallSet {
		for _, have := range sc.queues {
			if have == q {
				return dst
			}
		}
		if len(sc.queues) == smallSet {
			if sc.qset == nil {
				sc.qset = make(map[*amqpQueue]struct{}, 4*smallSet)
			}
			for _, have := range sc.queues {
				sc.qset[have] = struct{}{}
			}
			sc.qset[q] = struct{}{}
		}
	} else {
		if _, ok := sc.qset[q]; ok {
			return dst
		}
		sc.qset[q] = struct{}{}
	}
	sc.queues = append(sc.queues, q)
	return append(dst, QueueRef{Name: q.def.Name, ID: q.def.ID})
}

// route appends to dst the queues a message published to exchange with the
// given routing keys and headers goes to, each once. The exchange's type
// picks the bindings; bindings to exchanges are followed (each exchange at
// most once); an exchange whose bindings match nothing passes the message
// to its alternate exchange, if that exists. Publishing to an internal
// exchange is refused.
func (s *amqpState) route(dst []QueueRef, sc *routeScratch, vhost, exchange string, keys []string, headers Table) ([]QueueRef, error) {
	vh, err := s.vhost(vhost)
	if err != nil {
		return dst, err
	}
	x, ok := vh.exchanges[exchange]
	if !ok {
		return dst, modelErr(ErrNotFound, "no %s", rs("exchange", vhost, exchange))
	}
	if x.def.Internal {
		return dst, modelErr(ErrAccessRefused, "cannot publish to internal %s", rs("exchange", vhost, exchange))
	}
	sc.seen(x)
	for i := 0; i < len(sc.work); i++ {
		x := sc.work[i]
		if x.def.Name == "" {
			// The default exchange: every queue is bound to it by its name.
			for _, k := range keys {
				if q, ok := vh.queues[k]; ok {
					dst = sc.addQueue(dst, q)
				}
			}
			continue
		}
		sc.dests = x.match(sc.dests[:0], keys, headers, sc)
		if len(sc.dests) == 0 {
			if x.hasAlternate {
				if ae, ok := vh.exchanges[x.alternate]; ok {
					sc.seen(ae)
				}
			}
			continue
		}
		for _, b := range sc.dests {
			if b.dq != nil {
				dst = sc.addQueue(dst, b.dq)
			} else {
				sc.seen(b.dx)
			}
		}
	}
	return dst, nil
}

// match appends the bindings of x that a message matches.
func (x *amqpExchange) match(dests []*amqpBinding, keys []string, headers Table, sc *routeScratch) []*amqpBinding {
	switch x.def.Type {
	case ExchangeDirect:
		for _, k := range keys {
			dests = append(dests, x.direct[k]...)
		}
	case ExchangeFanout:
		dests = append(dests, x.list...)
	case ExchangeTopic:
		sc.dests = dests
		for _, k := range keys {
			x.topic.match(k, sc)
		}
		dests = sc.dests
	case ExchangeHeaders:
		for _, b := range x.list {
			if b.headers.matches(headers) {
				dests = append(dests, b)
			}
		}
	}
	return dests
}
