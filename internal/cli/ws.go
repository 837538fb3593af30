package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"

	"github.com/coder/websocket"
)

// wsClient is a WebSocket session with the broker: requests get replies
// matched by id, everything else (records, deliveries) goes to events.
type wsClient struct {
	c       *websocket.Conn
	mu      sync.Mutex
	nextID  int
	waiting map[string]chan map[string]any
	events  chan map[string]any
	done    chan struct{}
	err     error
}

func (cl *Client) dialWS(ctx context.Context) (*wsClient, error) {
	h := http.Header{}
	req, _ := http.NewRequest(http.MethodGet, "http://x", nil)
	req.SetBasicAuth(cl.User, cl.Password)
	h.Set("Authorization", req.Header.Get("Authorization"))
	c, resp, err := websocket.Dial(ctx, cl.wsURL(), &websocket.DialOptions{HTTPHeader: h, Subprotocols: []string{"wharf.v1"}})
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusUnauthorized {
			return nil, fmt.Errorf("connecting to %s: authentication failed", cl.wsURL())
		}
		return nil, fmt.Errorf("connecting to %s: %w", cl.wsURL(), err)
	}
	c.SetReadLimit(64 << 20)
	w := &wsClient{c: c, waiting: map[string]chan map[string]any{}, events: make(chan map[string]any, 1024), done: make(chan struct{})}
	go w.read()
	select {
	case m := <-w.events:
		if m["type"] != "welcome" {
			c.CloseNow()
			return nil, fmt.Errorf("unexpected first frame %v", m)
		}
	case <-w.done:
		return nil, w.err
	case <-ctx.Done():
		c.CloseNow()
		return nil, ctx.Err()
	}
	return w, nil
}

func (w *wsClient) read() {
	defer close(w.done)
	defer close(w.events)
	for {
		_, data, err := w.c.Read(context.Background())
		if err != nil {
			w.err = fmt.Errorf("connection ended: %w", err)
			return
		}
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			w.err = fmt.Errorf("undecodable frame: %w", err)
			return
		}
		if id, ok := m["id"].(string); ok && (m["type"] == "ok" || m["type"] == "error") {
			w.mu.Lock()
			ch := w.waiting[id]
			delete(w.waiting, id)
			w.mu.Unlock()
			if ch != nil {
				ch <- m
				continue
			}
		}
		w.events <- m
	}
}

// send sends a request and returns the channel its reply will come on.
func (w *wsClient) send(ctx context.Context, req map[string]any) (<-chan map[string]any, error) {
	w.mu.Lock()
	w.nextID++
	id := strconv.Itoa(w.nextID)
	ch := make(chan map[string]any, 1)
	w.waiting[id] = ch
	w.mu.Unlock()
	req["id"] = id
	b, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	if err := w.c.Write(ctx, websocket.MessageText, b); err != nil {
		return nil, fmt.Errorf("sending: %w", err)
	}
	return ch, nil
}

// call sends a request and waits for its reply; an error reply is an
// error.
func (w *wsClient) call(ctx context.Context, req map[string]any) (map[string]any, error) {
	ch, err := w.send(ctx, req)
	if err != nil {
		return nil, err
	}
	select {
	case m := <-ch:
		return m, replyErr(m)
	case <-w.done:
		return nil, w.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// notify sends a request that gets no reply.
func (w *wsClient) notify(ctx context.Context, req map[string]any) error {
	b, err := json.Marshal(req)
	if err != nil {
		return err
	}
	return w.c.Write(ctx, websocket.MessageText, b)
}

func replyErr(m map[string]any) error {
	if m["type"] == "error" {
		return fmt.Errorf("%v (%v)", m["message"], m["code"])
	}
	return nil
}

func (w *wsClient) close() {
	_ = w.c.Close(websocket.StatusNormalClosure, "")
}
