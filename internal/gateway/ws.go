package gateway

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wharfmq/wharf/internal/auth"
	"github.com/wharfmq/wharf/internal/gateway/hub"
	"github.com/wharfmq/wharf/internal/gateway/service"
	"github.com/wharfmq/wharf/internal/gateway/wsproto"
	"github.com/wharfmq/wharf/internal/limits"
)

// Close codes of the WebSocket protocol beyond RFC 6455's (docs/websocket.md).
const (
	CloseAuthTimeout = 4000 // no auth request in time
	CloseSlowClient  = 4001 // the outbox overflowed
	CloseAuthFailed  = 4003 // an auth request was refused
	ClosePingTimeout = 4008 // no pong to a ping in time
	CloseLimit       = 4029 // the user's connection limit is reached (an auth request beyond it)
)

// readBufferSize is each connection's read buffer. Frames larger than it
// are read in pieces; keeping it small keeps idle connections cheap.
const readBufferSize = 1024

// WSOptions configure the WebSocket endpoint.
type WSOptions struct {
	// PingInterval is how often the server pings; a connection that does
	// not answer within another interval is closed. Zero means 25s.
	PingInterval time.Duration
	// MaxMessageBytes bounds one frame from a client. Zero means 1 MiB.
	MaxMessageBytes int64
	// OutboxBytes bounds what may wait to be sent to one connection; past
	// it the connection is closed as slow (4001). Zero means 4 MiB.
	OutboxBytes int
	// AllowedOrigins are the Origin hosts (path.Match patterns, or
	// scheme://host patterns) allowed besides the request's own host; "*"
	// allows any origin.
	AllowedOrigins []string
	// Anonymous lets clients in without credentials.
	Anonymous bool
	// BroadcastUsers may broadcast ("*": every authenticated user); a JWT
	// may grant it with the claim "broadcast": true.
	BroadcastUsers []string
	// AuthTimeout bounds how long a connection may stay unauthenticated.
	// Zero means 10s.
	AuthTimeout time.Duration
	// CloseTimeout bounds the close handshake: how long the server waits
	// for the client's close frame before closing TCP. Zero means 5s.
	CloseTimeout time.Duration
	// UserLimits counts each user's sessions (client id, for a token
	// login) against the per-user connection limit, shared with AMQP and
	// the REST and gRPC faces. Anonymous sessions are not counted. Nil
	// means no limit.
	UserLimits *limits.Users
}

func (o *WSOptions) defaults() {
	if o.PingInterval <= 0 {
		o.PingInterval = 25 * time.Second
	}
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = 1 << 20
	}
	if o.OutboxBytes <= 0 {
		o.OutboxBytes = 4 << 20
	}
	if o.AuthTimeout <= 0 {
		o.AuthTimeout = 10 * time.Second
	}
	if o.CloseTimeout <= 0 {
		o.CloseTimeout = 5 * time.Second
	}
}

// WebSocket is the /ws endpoint: the sessions' hub and what each session
// reaches through the service.
type WebSocket struct {
	svc      *service.Service
	hub      *hub.Hub
	users    *auth.Store
	jwt      *auth.JWTVerifier
	opts     WSOptions
	logger   *slog.Logger
	metrics  *wsMetrics
	upgrader websocket.Upgrader
	refusals *limits.LogSampler // one log line per kind of limit refusal per interval

	mu     sync.Mutex
	conns  map[*wsConn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// NewWebSocket returns the endpoint. users and jwt may be nil (no password
// or token logins).
func NewWebSocket(svc *service.Service, users *auth.Store, jwt *auth.JWTVerifier, opts WSOptions, logger *slog.Logger) *WebSocket {
	opts.defaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ws := &WebSocket{
		svc: svc, hub: hub.New(), users: users, jwt: jwt, opts: opts, logger: logger,
		metrics: newWSMetrics(), conns: map[*wsConn]struct{}{},
		refusals: limits.NewLogSampler(logger, 0, nil),
	}
	ws.upgrader = websocket.Upgrader{
		ReadBufferSize: readBufferSize,
		// Write buffers are taken from a pool only while a frame is
		// written, so an idle connection holds none.
		WriteBufferPool:  &sync.Pool{},
		Subprotocols:     []string{wsproto.Subprotocol},
		CheckOrigin:      ws.checkOrigin,
		HandshakeTimeout: 10 * time.Second,
		Error: func(w http.ResponseWriter, r *http.Request, status int, reason error) {
			ws.logger.Info("websocket handshake refused", "remote", r.RemoteAddr, "origin", r.Header.Get("Origin"), "status", status, "err", reason)
			code := service.CodeInvalid
			if status == http.StatusForbidden {
				code = service.CodeForbidden
			}
			writeError(ws.logger, w, status, code, reason.Error())
		},
	}
	return ws
}

// checkOrigin admits requests without an Origin (non-browser clients),
// from the listener's own host, or from an allowed origin: a host pattern
// (path.Match, case-insensitive), a scheme://host pattern, or "*".
func (ws *WebSocket) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	for _, p := range ws.opts.AllowedOrigins {
		if p == "*" {
			return true
		}
		target := u.Host
		if strings.Contains(p, "://") {
			target = u.Scheme + "://" + u.Host
		}
		if ok, _ := path.Match(strings.ToLower(p), strings.ToLower(target)); ok {
			return true
		}
	}
	return false
}

// Hub returns the sessions' hub, for the other faces to send to clients.
func (ws *WebSocket) Hub() *hub.Hub { return ws.hub }

// identity is who a connection is.
type identity struct {
	clientID  string
	broadcast bool
	// user is the Wharf user whose permissions govern the session's
	// broker requests (ws_access.go): the password login's user, or a
	// JWT's subject when it names a user; "" otherwise.
	user string
	// token: the session logged in with a JWT, whose read and write
	// claims (nil: none) narrow what it may do.
	token       bool
	read, write *regexp.Regexp
}

// ServeHTTP upgrades a request to a WebSocket session.
func (ws *WebSocket) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id, authed, err := ws.handshakeAuth(r)
	if err != nil {
		ws.metrics.authFailures.Add(1)
		ws.logger.Info("websocket login refused", "remote", r.RemoteAddr, "err", err)
		w.Header().Set("WWW-Authenticate", `Bearer realm="wharf", Basic realm="wharf"`)
		writeError(ws.logger, w, http.StatusUnauthorized, service.CodeUnauthorized, "authentication failed")
		return
	}
	releaseUser := func() {}
	if authed {
		release, ok := ws.opts.UserLimits.Acquire(id.clientID)
		if !ok {
			// Refused before the upgrade, as a refused login is.
			msg := ws.refuseUser(id.clientID, r.RemoteAddr)
			w.Header().Set("Retry-After", "1")
			writeError(ws.logger, w, http.StatusTooManyRequests, service.CodeLimitReached, msg)
			return
		}
		releaseUser = release
	}
	ws.mu.Lock()
	if ws.closed {
		ws.mu.Unlock()
		releaseUser()
		writeError(ws.logger, w, http.StatusServiceUnavailable, service.CodeUnavailable, "shutting down")
		return
	}
	ws.wg.Add(1)
	ws.mu.Unlock()

	c, err := ws.upgrader.Upgrade(w, r, nil)
	if err != nil {
		releaseUser()
		ws.wg.Done()
		return // Upgrade has answered (403 for a refused origin, 400 for a bad handshake)
	}
	c.SetReadLimit(ws.opts.MaxMessageBytes)
	conn := newWSConn(ws, c, r.RemoteAddr)
	conn.releaseUser = releaseUser
	ws.mu.Lock()
	if ws.closed {
		ws.mu.Unlock()
		releaseUser()
		_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "shutting down"), time.Now().Add(time.Second))
		_ = c.Close()
		ws.wg.Done()
		return
	}
	ws.conns[conn] = struct{}{}
	ws.mu.Unlock()
	ws.metrics.connections.Add(1)
	// The session runs on a goroutine of its own and the HTTP handler
	// returns: the handler's goroutine carries net/http's deep stack for
	// the connection's whole life, a fresh one only what the session
	// needs (measured: 16 KiB of stack per idle connection before).
	go func() {
		defer ws.wg.Done()
		defer func() {
			ws.mu.Lock()
			delete(ws.conns, conn)
			ws.mu.Unlock()
			ws.metrics.connections.Add(-1)
		}()
		conn.serve(id, authed)
	}()
}

// refuseUser logs (sampled) a session refused by the per-user connection
// limit and returns the message the client gets.
func (ws *WebSocket) refuseUser(user, remote string) string {
	ws.refusals.Warn("user connection limit", "websocket session refused: user connection limit reached",
		"remote", remote, "user", user, "limit", ws.opts.UserLimits.Max(), "setting", "limits.max_connections_per_user")
	return fmt.Sprintf("connection refused for user '%s': user connection limit (%d) is reached", user, ws.opts.UserLimits.Max())
}

// handshakeAuth reads credentials from the upgrade request: a bearer token
// (Authorization header, or access_token in the query for browsers, which
// cannot set headers on a WebSocket), or Basic user and password. No
// credentials is not an error: authed is then false, unless anonymous
// access is on.
func (ws *WebSocket) handshakeAuth(r *http.Request) (identity, bool, error) {
	h := r.Header.Get("Authorization")
	switch {
	case strings.HasPrefix(h, "Bearer "):
		id, err := ws.verifyToken(strings.TrimPrefix(h, "Bearer "))
		return id, err == nil, err
	case strings.HasPrefix(h, "Basic "):
		raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(h, "Basic "))
		if err != nil {
			return identity{}, false, errors.New("malformed Basic credentials")
		}
		user, pass, ok := strings.Cut(string(raw), ":")
		if !ok {
			return identity{}, false, errors.New("malformed Basic credentials")
		}
		id, err := ws.verifyPassword(user, pass, r.RemoteAddr)
		return id, err == nil, err
	case h != "":
		return identity{}, false, errors.New("unsupported Authorization scheme")
	}
	if tok := r.URL.Query().Get("access_token"); tok != "" {
		id, err := ws.verifyToken(tok)
		return id, err == nil, err
	}
	return identity{}, false, nil
}

func (ws *WebSocket) verifyToken(tok string) (identity, error) {
	claims, err := ws.jwt.VerifyJWT(tok)
	if err != nil {
		return identity{}, err
	}
	id := identity{clientID: claims.Subject, broadcast: claims.Broadcast || ws.mayBroadcast(claims.Subject),
		token: true, read: claims.Read, write: claims.Write}
	if ws.users != nil {
		if _, ok := ws.users.Lookup(claims.Subject); ok {
			id.user = claims.Subject
		}
	}
	return id, nil
}

func (ws *WebSocket) verifyPassword(user, pass, remote string) (identity, error) {
	if ws.users == nil {
		return identity{}, errors.New("password logins are not configured")
	}
	addr, _ := net.ResolveTCPAddr("tcp", remote)
	var a net.Addr
	if addr != nil {
		a = addr
	}
	if _, err := ws.users.Authenticate(user, pass, a); err != nil {
		return identity{}, err
	}
	return identity{clientID: user, broadcast: ws.mayBroadcast(user), user: user}, nil
}

func (ws *WebSocket) mayBroadcast(user string) bool {
	return slices.Contains(ws.opts.BroadcastUsers, "*") || slices.Contains(ws.opts.BroadcastUsers, user)
}

// Shutdown closes every session with 1001 going away (close handshake
// included) and waits for them, at most until ctx ends.
func (ws *WebSocket) Shutdown(ctx context.Context) {
	ws.mu.Lock()
	ws.closed = true
	conns := make([]*wsConn, 0, len(ws.conns))
	for c := range ws.conns {
		conns = append(conns, c)
	}
	ws.mu.Unlock()
	for _, c := range conns {
		c.closeWith(websocket.CloseGoingAway, "server shutting down")
	}
	done := make(chan struct{})
	go func() { ws.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		ws.mu.Lock()
		for c := range ws.conns {
			_ = c.c.Close()
		}
		ws.mu.Unlock()
	}
}
