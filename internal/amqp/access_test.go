package amqp

import (
	"errors"
	"strings"
	"testing"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/wharfmq/wharf/internal/auth"
)

// grantAll gives users every permission on vhost "/".
func grantAll(t *testing.T, users *auth.Store, names ...string) {
	t.Helper()
	for _, n := range names {
		if err := users.SetPermission(n, "/", auth.Permission{Configure: ".*", Write: ".*", Read: ".*"}); err != nil {
			t.Fatal(err)
		}
	}
}

// accessServer knows guest (everything) and:
//   - app: configure on app-*, write on app-* exchanges and amq.default,
//     read on app-* queues and exchanges;
//   - stranger: no permission on vhost "/".
func accessServer(t *testing.T) *testServer {
	t.Helper()
	users := auth.NewDefaultStore()
	for _, n := range []string{"app", "stranger"} {
		if err := users.Put(n, n+"-pw", false); err != nil {
			t.Fatal(err)
		}
	}
	if err := users.SetPermission("app", "/", auth.Permission{Configure: "^app-", Write: "^(app-|amq\\.default$)", Read: "^app-"}); err != nil {
		t.Fatal(err)
	}
	return startServer(t, Options{Users: users})
}

// refused asserts that err is a 403 channel close naming the resource.
func refused(t *testing.T, what string, err error, want string) {
	t.Helper()
	var e *amqp091.Error
	if !errors.As(err, &e) || e.Code != amqp091.AccessRefused || !strings.Contains(e.Reason, want) {
		t.Errorf("%s: %v, want 403 with %q", what, err, want)
	}
}

func TestAccessVhostRefused(t *testing.T) {
	t.Parallel()
	ts := accessServer(t)
	_, err := amqp091.Dial("amqp://stranger:stranger-pw@" + ts.addr + "/")
	var e *amqp091.Error
	if !errors.As(err, &e) || e.Code != amqp091.NotAllowed || !strings.Contains(e.Reason, "access to vhost '/' refused for user 'stranger'") {
		t.Fatalf("stranger opening vhost /: %v", err)
	}
}

func TestAccessPerOperation(t *testing.T) {
	t.Parallel()
	ts := accessServer(t)
	admin := ts.dial(t)
	ach, err := admin.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ach.QueueDeclare("secret", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ach.ExchangeDeclare("ops", "direct", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ach.Publish("", "secret", false, false, amqp091.Publishing{Body: []byte("classified")}); err != nil {
		t.Fatal(err)
	}

	conn, err := amqp091.Dial("amqp://app:app-pw@" + ts.addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	channel := func() *amqp091.Channel {
		ch, err := conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		return ch
	}

	// Allowed: its own queue and exchange, publishing through both.
	ch := channel()
	if _, err := ch.QueueDeclare("app-jobs", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeDeclare("app-x", "direct", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind("app-jobs", "k", "app-x", false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.Publish("app-x", "k", false, false, amqp091.Publishing{Body: []byte("a")}); err != nil {
		t.Fatal(err)
	}
	if err := ch.Publish("", "app-jobs", false, false, amqp091.Publishing{Body: []byte("b")}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"a", "b"} {
		if d := getMessage(t, ch, "app-jobs"); string(d.Body) != want {
			t.Fatalf("get from app-jobs: %q, want %q", d.Body, want)
		}
	}
	// Passive declarations check existence only.
	if _, err := ch.QueueDeclarePassive("secret", true, false, false, false, nil); err != nil {
		t.Fatalf("passive declare of secret: %v", err)
	}

	cases := []struct {
		name string
		op   func(*amqp091.Channel) error
		want string
	}{
		{"declare queue", func(c *amqp091.Channel) error {
			_, err := c.QueueDeclare("other", false, false, false, false, nil)
			return err
		}, "access to queue 'other' in vhost '/' refused for user 'app'"},
		{"server-named queue", func(c *amqp091.Channel) error {
			_, err := c.QueueDeclare("", false, true, true, false, nil)
			return err
		}, "access to queue 'amq.gen-'"},
		{"delete queue", func(c *amqp091.Channel) error {
			_, err := c.QueueDelete("secret", false, false, false)
			return err
		}, "access to queue 'secret'"},
		{"declare exchange", func(c *amqp091.Channel) error {
			return c.ExchangeDeclare("evil", "fanout", false, false, false, false, nil)
		}, "access to exchange 'evil'"},
		{"consume", func(c *amqp091.Channel) error {
			_, err := c.Consume("secret", "", false, false, false, false, nil)
			return err
		}, "access to queue 'secret'"},
		{"get", func(c *amqp091.Channel) error {
			_, _, err := c.Get("secret", true)
			return err
		}, "access to queue 'secret'"},
		{"purge", func(c *amqp091.Channel) error {
			_, err := c.QueuePurge("secret", false)
			return err
		}, "access to queue 'secret'"},
		{"bind from a foreign exchange", func(c *amqp091.Channel) error {
			return c.QueueBind("app-jobs", "k", "ops", false, nil)
		}, "access to exchange 'ops'"},
		{"bind a foreign queue", func(c *amqp091.Channel) error {
			return c.QueueBind("secret", "k", "app-x", false, nil)
		}, "access to queue 'secret'"},
		{"exchange bind", func(c *amqp091.Channel) error {
			return c.ExchangeBind("ops", "k", "app-x", false, nil)
		}, "access to exchange 'ops'"},
	}
	for _, c := range cases {
		ch := channel()
		err := c.op(ch)
		refused(t, c.name, err, c.want)
	}

	// A publish to a foreign exchange closes the channel; nothing arrives.
	ch = channel()
	closed := ch.NotifyClose(make(chan *amqp091.Error, 1))
	if err := ch.Publish("ops", "k", false, false, amqp091.Publishing{Body: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	refused(t, "publish to ops", <-closed, "access to exchange 'ops'")

	// The stored data is untouched.
	n, err := ach.QueueDeclarePassive("secret", true, false, false, false, nil)
	if err != nil || n.Messages != 1 {
		t.Fatalf("secret after the refusals: %+v %v", n, err)
	}
}

// grantVhost gives a user of the server every permission on vhost.
func grantVhost(t *testing.T, ts *testServer, user, vhost string) {
	t.Helper()
	if err := ts.srv.opts.Users.SetPermission(user, vhost, auth.Permission{Configure: ".*", Write: ".*", Read: ".*"}); err != nil {
		t.Fatal(err)
	}
}
