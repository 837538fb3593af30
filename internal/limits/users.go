package limits

import "sync"

// Users counts the connections of each user against one maximum per user.
// A connection is whatever the protocol that counts it says: an AMQP
// connection, a WebSocket session, a REST or gRPC call in progress.
type Users struct {
	max int
	mu  sync.Mutex
	n   map[string]int
}

// NewUsers returns a counter admitting at most max connections per user;
// zero or less means no limit.
func NewUsers(max int) *Users {
	return &Users{max: max, n: map[string]int{}}
}

// Max is the per-user maximum; zero means none.
func (u *Users) Max() int {
	if u == nil || u.max < 0 {
		return 0
	}
	return u.max
}

// Acquire takes one of user's slots. It returns ok false, and takes
// nothing, when the user already holds the maximum; otherwise release
// gives the slot back (once, however often it is called).
func (u *Users) Acquire(user string) (release func(), ok bool) {
	if u == nil {
		return func() {}, true
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.max > 0 && u.n[user] >= u.max {
		return nil, false
	}
	u.n[user]++
	var once sync.Once
	return func() {
		once.Do(func() {
			u.mu.Lock()
			if u.n[user]--; u.n[user] <= 0 {
				delete(u.n, user)
			}
			u.mu.Unlock()
		})
	}, true
}

// Count is the number of slots user holds.
func (u *Users) Count(user string) int {
	if u == nil {
		return 0
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.n[user]
}
