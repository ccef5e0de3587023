package ops

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// RequestIDHeader carries the request id in every response, and in
// requests that come through a trusted proxy that already assigned one.
const RequestIDHeader = "X-Request-Id"

// RouteOther labels requests that match no known route.
const RouteOther = "other"

// Middleware configures [Middleware.Wrap].
type Middleware struct {
	// Logger receives one line per request. nil discards.
	Logger *slog.Logger
	// Metrics counts requests; nil counts nothing.
	Metrics *Metrics
	// Route names the route of a request for logs and metrics: a template
	// such as "/oauth2/token", never the raw path. nil, or "", means
	// [RouteOther]. It is called after the handler.
	Route func(*http.Request) string
	// QuietRoutes are logged at debug level instead of info (health and
	// metrics probes).
	QuietRoutes []string
	// TrustedProxies are the networks whose X-Forwarded-For,
	// X-Forwarded-Proto, X-Forwarded-Host and X-Request-Id headers are
	// believed. From any other peer these headers are removed before the
	// handler runs, so nothing downstream can be fooled by them.
	TrustedProxies []netip.Prefix
	// TracerProvider, when set, records a span per request, named by its
	// method and route template ("POST /oauth2/token"), never with the
	// URL's query. A W3C traceparent is continued only from a trusted
	// proxy. nil traces nothing, at no cost.
	TracerProvider trace.TracerProvider
}

// Wrap returns next with request logging, metrics, request ids and
// proxy-header handling. For each request it:
//   - assigns a request id (a trusted proxy's X-Request-Id, else a random
//     one), returns it in the X-Request-Id response header and puts it in
//     the context, where [LogHandler] adds it to every log line;
//   - determines the client address: the peer, or, when the peer is a
//     trusted proxy, the right-most untrusted address of X-Forwarded-For;
//     r.RemoteAddr is rewritten to it so rate limits see the real client;
//   - after next returns, logs one line: request id, method, route
//     template (the one a router gave [SetRoute], else Route's), status,
//     duration, client address and, if known, the client id. It never logs the URL, query string, body or headers.
func (m *Middleware) Wrap(next http.Handler) http.Handler {
	log := m.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	quiet := make(map[string]bool, len(m.QuietRoutes))
	for _, r := range m.QuietRoutes {
		quiet[r] = true
	}
	var tracer trace.Tracer
	if m.TracerProvider != nil {
		tracer = m.TracerProvider.Tracer(tracerName)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		trusted := m.trusted(r.RemoteAddr)
		client := m.clientAddr(r, trusted)
		if !trusted {
			for _, h := range []string{"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Forwarded-Port", "X-Forwarded-Prefix", "Forwarded", RequestIDHeader, "Traceparent", "Tracestate"} {
				r.Header.Del(h)
			}
		} else if client.IsValid() {
			r.RemoteAddr = netip.AddrPortFrom(client, 0).String()
		}
		id := r.Header.Get(RequestIDHeader)
		if !validRequestID(id) {
			id = newRequestID()
		}
		info := &requestInfo{id: id, clientID: clientIDOf(r)}
		outer := r.Context() // the request line names its id itself
		var span trace.Span
		if tracer != nil {
			outer, span = startRequestSpan(outer, tracer, r)
		}
		ctx := context.WithValue(outer, infoKey{}, info)
		w.Header().Set(RequestIDHeader, id)
		rec := &recorder{ResponseWriter: w}
		r = r.WithContext(ctx)
		defer func() {
			panicked := recover()
			if panicked != nil && rec.status == 0 {
				http.Error(rec, `{"error":"server_error"}`, http.StatusInternalServerError)
			}
			route := info.matchedRoute()
			if route == "" && m.Route != nil {
				route = m.Route(r)
			}
			if route == "" {
				route = RouteOther
			}
			status := rec.status
			if status == 0 {
				status = http.StatusOK
			}
			d := time.Since(start)
			method := methodLabel(r.Method)
			if m.Metrics != nil {
				m.Metrics.observeRequest(route, method, status, d)
			}
			level := slog.LevelInfo
			switch {
			case status >= 500:
				level = slog.LevelError
			case quiet[route]:
				level = slog.LevelDebug
			}
			attrs := []slog.Attr{
				slog.String("request_id", id),
				slog.String("method", method),
				slog.String("route", route),
				slog.Int("status", status),
				slog.Float64("duration_ms", float64(d.Microseconds())/1000),
				slog.Int64("bytes", rec.bytes),
			}
			if client.IsValid() {
				attrs = append(attrs, slog.String("remote", client.String()))
			}
			if cid := info.client(); cid != "" {
				attrs = append(attrs, slog.String("client_id", cid))
			}
			if panicked != nil {
				level = slog.LevelError
				attrs = append(attrs, slog.Any("panic", panicked), slog.String("stack", string(debug.Stack())))
			}
			if span != nil {
				endRequestSpan(span, method, route, status, id)
			}
			log.LogAttrs(outer, level, "request", attrs...)
			if panicked == http.ErrAbortHandler {
				panic(panicked)
			}
		}()
		next.ServeHTTP(rec, r)
	})
}

// trusted reports whether the peer at remoteAddr is a trusted proxy.
func (m *Middleware) trusted(remoteAddr string) bool {
	if len(m.TrustedProxies) == 0 {
		return false
	}
	a := peerAddr(remoteAddr)
	return a.IsValid() && m.inTrusted(a)
}

func (m *Middleware) inTrusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range m.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientAddr is the peer, or behind trusted proxies the right-most
// X-Forwarded-For entry that is not itself a trusted proxy.
func (m *Middleware) clientAddr(r *http.Request, trusted bool) netip.Addr {
	peer := peerAddr(r.RemoteAddr)
	if !trusted {
		return peer
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return peer // a garbled chain: believe nothing beyond the proxy
		}
		if !m.inTrusted(a) {
			return a.Unmap()
		}
	}
	return peer
}

func peerAddr(remoteAddr string) netip.Addr {
	if ap, err := netip.ParseAddrPort(remoteAddr); err == nil {
		return ap.Addr().Unmap()
	}
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

// clientIDOf is the client id a request names before its body is read:
// the HTTP Basic user (RFC 6749 §2.3.1 form-encodes it) or the client_id
// query parameter. A client that authenticates in the body is named by the
// handler through [SetClientID].
func clientIDOf(r *http.Request) string {
	if u, _, ok := r.BasicAuth(); ok {
		if id, err := url.QueryUnescape(u); err == nil {
			return sanitizeClientID(id)
		}
		return ""
	}
	return sanitizeClientID(r.URL.Query().Get("client_id"))
}

// sanitizeClientID keeps a client id loggable: short and printable. Client
// ids are not secrets, but an unauthenticated request can claim anything.
func sanitizeClientID(id string) string {
	if len(id) > 128 {
		id = id[:128]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, id)
}

// SetClientID names the client of the request whose context is ctx in its
// log line. Handlers call it once they know the client; without the
// middleware it does nothing.
func SetClientID(ctx context.Context, clientID string) {
	if info, ok := ctx.Value(infoKey{}).(*requestInfo); ok {
		info.mu.Lock()
		info.clientID = sanitizeClientID(clientID)
		info.mu.Unlock()
	}
}

// SetRoute names the route of the request whose context is ctx, for its
// log line and metrics: a router that has matched the request calls it
// with the route's template (e.g. "/oauth2/token"), and the middleware
// then does not call [Middleware.Route]. Without the middleware it does
// nothing.
func SetRoute(ctx context.Context, route string) {
	if info, ok := ctx.Value(infoKey{}).(*requestInfo); ok {
		info.mu.Lock()
		info.route = route
		info.mu.Unlock()
	}
}

// RequestID returns the request id of ctx, or "".
func RequestID(ctx context.Context) string {
	if info, ok := ctx.Value(infoKey{}).(*requestInfo); ok {
		return info.id
	}
	return ""
}

type infoKey struct{}

// requestInfo is what the middleware learns about a request while it runs.
type requestInfo struct {
	id string // immutable

	mu       sync.Mutex
	clientID string // guarded by mu
	route    string // guarded by mu; SetRoute's
}

func (i *requestInfo) matchedRoute() string {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.route
}

func (i *requestInfo) client() string {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.clientID
}

func newRequestID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// validRequestID accepts a proxy's id if it is short and made of safe
// characters.
func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return m
	}
	return "other"
}

// recorder captures the status and size of a response.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Flush implements http.Flusher.
func (r *recorder) Flush() {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	http.NewResponseController(r.ResponseWriter).Flush()
}

// LogHandler wraps h so that every record logged with a request's context
// carries its request_id.
func LogHandler(h slog.Handler) slog.Handler { return logHandler{h} }

type logHandler struct{ slog.Handler }

func (h logHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := RequestID(ctx); id != "" {
		r = r.Clone()
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h logHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return logHandler{h.Handler.WithAttrs(as)}
}

func (h logHandler) WithGroup(name string) slog.Handler {
	return logHandler{h.Handler.WithGroup(name)}
}

// startRequestSpan starts the server span of r, continuing the trace of a
// traceparent header (only a trusted proxy's is left on r).
func startRequestSpan(ctx context.Context, t trace.Tracer, r *http.Request) (context.Context, trace.Span) {
	ctx = propagation.TraceContext{}.Extract(ctx, propagation.HeaderCarrier(r.Header))
	return t.Start(ctx, methodLabel(r.Method), trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.request.method", methodLabel(r.Method))))
}

// endRequestSpan names the span by its route template and ends it.
func endRequestSpan(span trace.Span, method, route string, status int, requestID string) {
	span.SetName(method + " " + route)
	span.SetAttributes(attribute.String("http.route", route), attribute.Int("http.response.status_code", status),
		attribute.String("wxoidc.request_id", requestID))
	if status >= 500 {
		span.SetStatus(codes.Error, http.StatusText(status))
	}
	span.End()
}
