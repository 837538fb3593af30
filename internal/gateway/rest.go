package gateway

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wharfmq/wharf/internal/auth"
	"github.com/wharfmq/wharf/internal/broker"
	"github.com/wharfmq/wharf/internal/buildinfo"
	"github.com/wharfmq/wharf/internal/gateway/service"
	"github.com/wharfmq/wharf/internal/limits"
)

// The REST face of the gateway: JSON over HTTP under /api/v1, described by
// the OpenAPI document served at /api/openapi.json. Routes are declared in
// restAPI.routes; rest_topics.go, rest_messages.go and rest_admin.go hold
// their handlers.

// openAPIDocument is the OpenAPI 3.0 description of the REST face. It is
// the embedded file: a constant, not state.
//
//go:embed openapi.json
var openAPIDocument string

// restPrefix is the subtree the REST face owns on the HTTP listener.
const restPrefix = "/api/"

// restRoute is one method on one path pattern. Patterns are written as in
// the OpenAPI document: literal segments and {name} wildcards, each a whole
// segment.
type restRoute struct {
	method  string
	pattern string
	handle  restHandler
	// public routes are served without credentials (the OpenAPI
	// document); every other route needs a login.
	public bool
	// allow, if set, decides whether the logged-in user may make the
	// request (rest_access.go); nil lets any logged-in user.
	allow restAllow
}

// restHandler serves one request; an error it returns becomes the JSON
// error response.
type restHandler func(w http.ResponseWriter, r *http.Request) error

// restAPI is the REST face: what every handler reaches.
type restAPI struct {
	svc     *service.Service
	b       *broker.Broker
	users   *auth.Store
	logger  *slog.Logger
	started time.Time
	build   buildinfo.Info
	// maxBody bounds a request body: room for one value or body of the
	// largest size the service accepts, in base64, plus its envelope.
	maxBody int64
	// paths are the routes by pattern, in registration order.
	paths []*restPath
	// userLimits counts each user's calls in progress against the
	// per-user connection limit; refusals logs them, sampled.
	userLimits *limits.Users
	refusals   *limits.LogSampler
	bridges    *broker.Bridges // nil: none configured
	access     service.Access  // what each user may do (rest_access.go)
}

// restPath is one pattern with its methods.
type restPath struct {
	pattern string
	segs    []string // "" for a wildcard, whose name is in names
	names   []string // wildcard name per segment, "" for literals
	methods map[string]restRoute
}

// mountREST serves the REST face on mux under /api/ when o has a service.
func mountREST(mux *http.ServeMux, o Options, logger *slog.Logger) {
	if o.Service == nil {
		return
	}
	mux.Handle(restPrefix, newRESTAPI(o, logger))
}

func newRESTAPI(o Options, logger *slog.Logger) *restAPI {
	a := &restAPI{
		svc: o.Service, b: o.Service.Broker(), users: o.Users, logger: logger,
		started: time.Now(), build: buildinfo.Get("", ""),
		maxBody:    2*int64(o.Service.MaxMessageBytes()) + 1<<20,
		userLimits: o.UserLimits,
		refusals:   limits.NewLogSampler(logger, 0, nil),
		bridges:    o.Bridges,
		access:     o.Service.Access(),
	}
	for _, rt := range a.routes() {
		a.add(rt)
	}
	return a
}

// routes lists every route of the REST face. The OpenAPI document must
// describe exactly these (TestOpenAPIMatchesRoutes).
func (a *restAPI) routes() []restRoute {
	const v1 = "/api/v1"
	return []restRoute{
		{method: http.MethodGet, pattern: "/api/openapi.json", handle: a.openAPI, public: true},
		{method: http.MethodGet, pattern: v1 + "/server", handle: a.serverInfo},

		// Topics (rest_topics.go).
		{method: http.MethodGet, pattern: v1 + "/topics", handle: a.listTopics, allow: allowMonitor},
		{method: http.MethodPost, pattern: v1 + "/topics", handle: a.createTopic},
		{method: http.MethodGet, pattern: v1 + "/topics/{topic}", handle: a.describeTopic, allow: allowTopic(auth.Read)},
		{method: http.MethodDelete, pattern: v1 + "/topics/{topic}", handle: a.deleteTopic, allow: allowTopic(auth.Configure)},
		{method: http.MethodGet, pattern: v1 + "/topics/{topic}/configs", handle: a.topicConfigs, allow: allowTopic(auth.Read)},
		{method: http.MethodPut, pattern: v1 + "/topics/{topic}/configs", handle: a.replaceTopicConfigs, allow: allowTopic(auth.Configure)},
		{method: http.MethodPatch, pattern: v1 + "/topics/{topic}/configs", handle: a.alterTopicConfigs, allow: allowTopic(auth.Configure)},
		{method: http.MethodPost, pattern: v1 + "/topics/{topic}/partitions", handle: a.createPartitions, allow: allowTopic(auth.Configure)},
		{method: http.MethodPost, pattern: v1 + "/topics/{topic}/records", handle: a.produce, allow: allowTopic(auth.Write)},
		{method: http.MethodGet, pattern: v1 + "/topics/{topic}/partitions/{partition}/records", handle: a.fetch, allow: allowTopic(auth.Read)},

		// Consumer groups (rest_topics.go).
		{method: http.MethodGet, pattern: v1 + "/groups", handle: a.listGroups, allow: allowMonitor},
		{method: http.MethodGet, pattern: v1 + "/groups/{group}", handle: a.describeGroup, allow: allowGroup(auth.Read)},
		{method: http.MethodDelete, pattern: v1 + "/groups/{group}", handle: a.deleteGroup, allow: allowGroup(auth.Configure)},
		{method: http.MethodGet, pattern: v1 + "/groups/{group}/offsets", handle: a.groupOffsets, allow: allowGroup(auth.Read)},
		{method: http.MethodPost, pattern: v1 + "/groups/{group}/offsets", handle: a.commitOffsets, allow: allowGroup(auth.Read)},

		// Messages (rest_messages.go).
		{method: http.MethodPost, pattern: v1 + "/vhosts/{vhost}/exchanges/{exchange}/publish", handle: a.publish, allow: allowExchange(auth.Write)},
		{method: http.MethodPost, pattern: v1 + "/vhosts/{vhost}/queues/{queue}/get", handle: a.getMessages, allow: allowQueue(auth.Read)},

		// Vhosts, exchanges, queues and bindings (rest_admin.go).
		{method: http.MethodGet, pattern: v1 + "/vhosts", handle: a.listVhosts, allow: allowMonitor},
		{method: http.MethodGet, pattern: v1 + "/vhosts/{vhost}", handle: a.getVhost, allow: allowMonitor},
		{method: http.MethodPut, pattern: v1 + "/vhosts/{vhost}", handle: a.putVhost, allow: allowAdmin},
		{method: http.MethodGet, pattern: v1 + "/vhosts/{vhost}/exchanges", handle: a.listExchanges, allow: allowMonitor},
		{method: http.MethodGet, pattern: v1 + "/vhosts/{vhost}/exchanges/{exchange}", handle: a.getExchange, allow: allowMonitor},
		{method: http.MethodPut, pattern: v1 + "/vhosts/{vhost}/exchanges/{exchange}", handle: a.putExchange, allow: allowExchange(auth.Configure)},
		{method: http.MethodDelete, pattern: v1 + "/vhosts/{vhost}/exchanges/{exchange}", handle: a.deleteExchange, allow: allowExchange(auth.Configure)},
		{method: http.MethodGet, pattern: v1 + "/vhosts/{vhost}/queues", handle: a.listQueues, allow: allowMonitor},
		{method: http.MethodGet, pattern: v1 + "/vhosts/{vhost}/queues/{queue}", handle: a.getQueue, allow: allowMonitor},
		{method: http.MethodPut, pattern: v1 + "/vhosts/{vhost}/queues/{queue}", handle: a.putQueue, allow: allowQueue(auth.Configure)},
		{method: http.MethodDelete, pattern: v1 + "/vhosts/{vhost}/queues/{queue}", handle: a.deleteQueue, allow: allowQueue(auth.Configure)},
		{method: http.MethodDelete, pattern: v1 + "/vhosts/{vhost}/queues/{queue}/contents", handle: a.purgeQueue, allow: allowQueue(auth.Read)},
		{method: http.MethodGet, pattern: v1 + "/vhosts/{vhost}/bindings", handle: a.listBindings, allow: allowMonitor},
		{method: http.MethodGet, pattern: v1 + "/vhosts/{vhost}/bindings/e/{source}/q/{destination}", handle: a.getBindings(false), allow: allowMonitor},
		{method: http.MethodPut, pattern: v1 + "/vhosts/{vhost}/bindings/e/{source}/q/{destination}", handle: a.bind(false), allow: allowBinding(false)},
		{method: http.MethodDelete, pattern: v1 + "/vhosts/{vhost}/bindings/e/{source}/q/{destination}", handle: a.unbind(false), allow: allowBinding(false)},
		{method: http.MethodGet, pattern: v1 + "/vhosts/{vhost}/bindings/e/{source}/e/{destination}", handle: a.getBindings(true), allow: allowMonitor},
		{method: http.MethodPut, pattern: v1 + "/vhosts/{vhost}/bindings/e/{source}/e/{destination}", handle: a.bind(true), allow: allowBinding(true)},
		{method: http.MethodDelete, pattern: v1 + "/vhosts/{vhost}/bindings/e/{source}/e/{destination}", handle: a.unbind(true), allow: allowBinding(true)},

		// Bridge rules (rest_bridges.go).
		{method: http.MethodGet, pattern: v1 + "/bridges", handle: a.listBridges, allow: allowMonitor},

		// Users (rest_admin.go).
		{method: http.MethodGet, pattern: v1 + "/users", handle: a.listUsers, allow: allowAdmin},
		{method: http.MethodGet, pattern: v1 + "/users/{name}", handle: a.getUser, allow: allowAdmin},
		{method: http.MethodPut, pattern: v1 + "/users/{name}", handle: a.putUser, allow: allowAdmin},
		{method: http.MethodDelete, pattern: v1 + "/users/{name}", handle: a.deleteUser, allow: allowAdmin},
		{method: http.MethodGet, pattern: v1 + "/users/{name}/permissions", handle: a.userPermissions, allow: allowAdmin},
		{method: http.MethodGet, pattern: v1 + "/permissions", handle: a.listPermissions, allow: allowAdmin},
		{method: http.MethodPut, pattern: v1 + "/permissions/{vhost}/{user}", handle: a.putPermission, allow: allowAdmin},
		{method: http.MethodDelete, pattern: v1 + "/permissions/{vhost}/{user}", handle: a.deletePermission, allow: allowAdmin},
	}
}

// add registers a route. Two patterns that could match the same path are
// a programming error (TestRESTPatternsDisjoint).
func (a *restAPI) add(rt restRoute) {
	for _, p := range a.paths {
		if p.pattern == rt.pattern {
			p.methods[rt.method] = rt
			return
		}
	}
	p := &restPath{pattern: rt.pattern, methods: map[string]restRoute{rt.method: rt}}
	for _, s := range strings.Split(strings.TrimPrefix(rt.pattern, "/"), "/") {
		if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
			p.segs, p.names = append(p.segs, ""), append(p.names, s[1:len(s)-1])
			continue
		}
		p.segs, p.names = append(p.segs, s), append(p.names, "")
	}
	a.paths = append(a.paths, p)
}

// match finds the pattern a path matches and the values of its wildcards.
//
// The REST face routes by itself rather than through ServeMux patterns:
// the default vhost "/" is written %2F in paths (as in RabbitMQ's
// management API), and ServeMux never binds a wildcard to a segment that
// unescapes to "/" (it reads it as a trailing slash), so
// /api/v1/vhosts/%2F/queues would not match /api/v1/vhosts/{vhost}/queues.
// Here the escaped path is split at its slashes first and each segment is
// unescaped after, so %2F is part of a name, never a separator.
func (a *restAPI) match(escapedPath string) (*restPath, []string, bool) {
	raw := strings.Split(strings.TrimPrefix(escapedPath, "/"), "/")
	segs := make([]string, len(raw))
	for i, s := range raw {
		u, err := url.PathUnescape(s)
		if err != nil {
			return nil, nil, false
		}
		segs[i] = u
	}
next:
	for _, p := range a.paths {
		if len(p.segs) != len(segs) {
			continue
		}
		var values []string
		for i, s := range p.segs {
			switch {
			case p.names[i] != "":
				if segs[i] == "" {
					continue next
				}
				values = append(values, segs[i])
			case s != segs[i]:
				continue next
			}
		}
		return p, values, true
	}
	return nil, nil, false
}

// ServeHTTP routes a request: 404 for an unknown path, 401 without a valid
// login, 405 for a method the path does not have.
func (a *restAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p, values, ok := a.match(r.URL.EscapedPath())
	if !ok {
		writeError(a.logger, w, http.StatusNotFound, codeNotFound, "no route for "+r.URL.Path)
		return
	}
	method := r.Method
	if method == http.MethodHead {
		method = http.MethodGet
	}
	rt, ok := p.methods[method]
	if !(ok && rt.public) {
		user, authed := a.authenticate(w, r)
		if !authed {
			return
		}
		release, admitted := a.userLimits.Acquire(user)
		if !admitted {
			a.refuseUser(w, r, user)
			return
		}
		defer release()
		r = r.WithContext(context.WithValue(r.Context(), restUserKey{}, user))
	}
	if !ok {
		allowed := make([]string, 0, len(p.methods))
		for m := range p.methods {
			allowed = append(allowed, m)
		}
		slices.Sort(allowed)
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		writeError(a.logger, w, http.StatusMethodNotAllowed, codeMethodNotAllowed, r.Method+" is not allowed on "+r.URL.Path)
		return
	}
	j := 0
	for _, name := range p.names {
		if name != "" {
			r.SetPathValue(name, values[j])
			j++
		}
	}
	if rt.allow != nil {
		if err := rt.allow(a, r, requestUser(r)); err != nil {
			a.fail(w, r, err)
			return
		}
	}
	if err := rt.handle(w, r); err != nil {
		a.fail(w, r, err)
	}
}

// restUserKey keys the authenticated user in a request's context.
type restUserKey struct{}

// requestUser is the user who made an authenticated request.
func requestUser(r *http.Request) string {
	u, _ := r.Context().Value(restUserKey{}).(string)
	return u
}

// authenticate checks HTTP Basic credentials against the users (guest
// only from loopback), and answers 401 when they are missing or wrong.
//
// What the user may then do is each route's allow (rest_access.go).
func (a *restAPI) authenticate(w http.ResponseWriter, r *http.Request) (string, bool) {
	user, pass, ok := r.BasicAuth()
	var err error
	switch {
	case !ok:
		err = errors.New("no Basic credentials")
	case a.users == nil:
		err = errors.New("password logins are not configured")
	default:
		var remote net.Addr
		if addr, rerr := net.ResolveTCPAddr("tcp", r.RemoteAddr); rerr == nil {
			remote = addr
		}
		_, err = a.users.Authenticate(user, pass, remote)
	}
	if err == nil {
		return user, true
	}
	if ok {
		a.logger.Info("rest login refused", "remote", r.RemoteAddr, "err", err)
	}
	w.Header().Set("WWW-Authenticate", `Basic realm="wharf", charset="UTF-8"`)
	writeError(a.logger, w, http.StatusUnauthorized, service.CodeUnauthorized, "authentication required: give a user and password with HTTP Basic")
	return "", false
}

// refuseUser answers a request of a user who holds as many connections
// as the per-user limit allows (a REST call in progress is one): 429 with
// the limit_reached code.
func (a *restAPI) refuseUser(w http.ResponseWriter, r *http.Request, user string) {
	a.refusals.Warn("user connection limit", "rest request refused: user connection limit reached",
		"remote", r.RemoteAddr, "user", user, "limit", a.userLimits.Max(), "setting", "limits.max_connections_per_user")
	w.Header().Set("Retry-After", "1")
	writeError(a.logger, w, http.StatusTooManyRequests, service.CodeLimitReached,
		fmt.Sprintf("connection refused for user '%s': user connection limit (%d) is reached", user, a.userLimits.Max()))
}

// restStatus is the HTTP status of each error code.
func restStatus(code string) int {
	switch code {
	case service.CodeInvalid:
		return http.StatusBadRequest
	case service.CodeUnauthorized:
		return http.StatusUnauthorized
	case service.CodeForbidden:
		return http.StatusForbidden
	case service.CodeNotFound:
		return http.StatusNotFound
	case service.CodeConflict:
		return http.StatusConflict
	case service.CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case service.CodeOutOfRange:
		return http.StatusRequestedRangeNotSatisfiable
	case service.CodeUnavailable:
		return http.StatusServiceUnavailable
	case service.CodeLimitReached:
		return http.StatusTooManyRequests
	}
	return http.StatusInternalServerError
}

// restError maps an error to its code: the consumer-group errors here,
// everything else as the service maps it.
func restError(err error) *service.Error {
	var e *service.Error
	if errors.As(err, &e) {
		return e
	}
	code := ""
	switch {
	case errors.Is(err, broker.ErrGroupIDNotFound):
		code = service.CodeNotFound
	case errors.Is(err, broker.ErrInvalidGroupID), errors.Is(err, broker.ErrOffsetMetadataTooLarge):
		code = service.CodeInvalid
	case errors.Is(err, broker.ErrNonEmptyGroup), errors.Is(err, broker.ErrUnknownMemberID),
		errors.Is(err, broker.ErrIllegalGeneration), errors.Is(err, broker.ErrRebalanceInProgress):
		code = service.CodeConflict
	case errors.Is(err, broker.ErrNotCoordinator):
		code = service.CodeUnavailable
	}
	if code != "" {
		return &service.Error{Code: code, Message: err.Error(), Err: err}
	}
	return service.AsError(err)
}

// fail writes err as the JSON error body with its status.
func (a *restAPI) fail(w http.ResponseWriter, r *http.Request, err error) {
	e := restError(err)
	status := restStatus(e.Code)
	if status == http.StatusInternalServerError {
		a.logger.Error("rest request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeError(a.logger, w, status, e.Code, e.Message)
}

// invalid is an invalid_argument error.
func invalid(format string, args ...any) error {
	return service.Errorf(service.CodeInvalid, format, args...)
}

// decodeBody decodes a request's JSON body into v: one JSON object, no
// unknown fields, at most maxBody bytes. Numbers in untyped places
// (properties' headers, arguments) stay json.Number, so integers keep
// their precision. An empty body is an error unless optional.
func (a *restAPI) decodeBody(w http.ResponseWriter, r *http.Request, v any, optional bool) error {
	body := http.MaxBytesReader(w, r.Body, a.maxBody)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	dec.UseNumber()
	err := dec.Decode(v)
	if errors.Is(err, io.EOF) {
		if optional {
			return nil
		}
		return invalid("missing request body: give a JSON object")
	}
	if err == nil {
		// Anything after the object but white space is an error.
		var extra json.RawMessage
		if err = dec.Decode(&extra); errors.Is(err, io.EOF) {
			return nil
		} else if err == nil {
			return invalid("malformed JSON body: more than one JSON value")
		}
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		a.refusals.Warn("request size", "rest request refused: body larger than the maximum",
			"remote", r.RemoteAddr, "path", r.URL.Path, "limit", mbe.Limit)
		return service.Errorf(service.CodeTooLarge, "request body is larger than %d bytes", mbe.Limit)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return invalid("malformed JSON body: %v (at byte %d)", se, se.Offset)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field == "" {
			return invalid("malformed JSON body: a JSON %s where a JSON %s belongs", te.Value, jsonKind(te.Type))
		}
		return invalid("malformed JSON body: %s is a JSON %s, not a JSON %s", te.Field, te.Value, jsonKind(te.Type))
	}
	return invalid("malformed JSON body: %v", strings.TrimPrefix(err.Error(), "json: "))
}

// jsonKind names the JSON type a Go type decodes from.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "boolean"
	case reflect.String:
		return "string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	}
	return "object"
}

// reply writes v as a JSON response.
func (a *restAPI) reply(w http.ResponseWriter, status int, v any) error {
	writeJSON(a.logger, w, status, v)
	return nil
}

// created is 201 when a resource was created and 200 when it was there.
func created(isNew bool) int {
	if isNew {
		return http.StatusCreated
	}
	return http.StatusOK
}

// queryInt reads an integer query parameter in [lo, hi]; def when absent.
func queryInt(r *http.Request, name string, def, lo, hi int64) (int64, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, invalid("query parameter %s=%q: give an integer from %d to %d", name, s, lo, hi)
	}
	return n, nil
}

// queryBool reads a boolean query parameter; false when absent.
func queryBool(r *http.Request, name string) (bool, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return false, nil
	}
	v, err := strconv.ParseBool(s)
	if err != nil {
		return false, invalid("query parameter %s=%q: give true or false", name, s)
	}
	return v, nil
}

// openAPI serves the OpenAPI document.
func (a *restAPI) openAPI(w http.ResponseWriter, r *http.Request) error {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-cache")
	if _, err := io.WriteString(w, openAPIDocument); err != nil {
		a.logger.Debug("writing response", "err", err)
	}
	return nil
}

// restServer is the body of GET /api/v1/server.
type restServer struct {
	Product   string `json:"product"`
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	GoVersion string `json:"go_version"`
	ClusterID string `json:"cluster_id"`
	StartedAt string `json:"started_at"`
	UptimeMS  int64  `json:"uptime_ms"`
}

// serverInfo describes the server. The version is what the Go toolchain
// recorded in the binary ("dev" without it); the uptime counts from when
// the HTTP handler was built, at startup.
func (a *restAPI) serverInfo(w http.ResponseWriter, r *http.Request) error {
	return a.reply(w, http.StatusOK, restServer{
		Product: "wharf", Version: a.build.Version, Commit: a.build.Commit, GoVersion: a.build.GoVersion,
		ClusterID: a.b.ClusterID(), StartedAt: a.started.UTC().Format(time.RFC3339),
		UptimeMS: time.Since(a.started).Milliseconds(),
	})
}
