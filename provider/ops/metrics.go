package ops

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wxoidc/wxoidc/provider/wechat"
	"github.com/wxoidc/wxoidc/storage"
)

// Metrics holds wxoidc's Prometheus metrics. Create it with NewMetrics; it
// is safe for concurrent use. It implements provider.Metrics.
type Metrics struct {
	gatherer prometheus.Gatherer

	requests        *prometheus.CounterVec   // route, method, code
	requestDuration *prometheus.HistogramVec // route, method
	rateLimited     *prometheus.CounterVec   // route
	tokens          *prometheus.CounterVec   // grant_type, client_id
	wechatCalls     *prometheus.CounterVec   // appid, api, errcode
	wechatDuration  *prometheus.HistogramVec // appid, api
	wechatRefreshes *prometheus.CounterVec   // appid, result
	storageDuration *prometheus.HistogramVec // op, result
	logouts         *prometheus.CounterVec   // client_id, outcome

	// Children looked up once: WithLabelValues hashes and validates its
	// label values on every call, some 2,000 instructions, and a token
	// request observes up to a dozen round trips.
	storageOK sync.Map // op → prometheus.Observer of result "ok"
	served    sync.Map // requestLabels → *requestChildren
}

// requestLabels names the children of one kind of request.
type requestLabels struct {
	route, method string
	status        int
}

type requestChildren struct {
	count    prometheus.Counter
	duration prometheus.Observer
}

// NewMetrics creates wxoidc's metrics and registers them with reg. It
// fails if reg already holds metrics of the same names.
func NewMetrics(reg *prometheus.Registry) (*Metrics, error) {
	m := &Metrics{
		gatherer: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wxoidc_http_requests_total",
			Help: "HTTP requests served, by route template, method and status code.",
		}, []string{"route", "method", "code"}),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "wxoidc_http_request_duration_seconds",
			Help:    "Time to serve an HTTP request, by route template and method.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wxoidc_rate_limited_total",
			Help: "Requests refused by wxoidc's own rate limits (HTTP 429), by route template.",
		}, []string{"route"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wxoidc_tokens_issued_total",
			Help: "Successful token responses, by grant type and client id.",
		}, []string{"grant_type", "client_id"}),
		wechatCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wxoidc_wechat_calls_total",
			Help: `Calls (attempts) to WeChat's server APIs, by appid, API and WeChat errcode ("0" for success, "unavailable" when WeChat could not be reached or answered garbage, "canceled" when the caller gave up).`,
		}, []string{"appid", "api", "errcode"}),
		wechatDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "wxoidc_wechat_call_duration_seconds",
			Help:    "Time of one attempt of a call to WeChat's server APIs, by appid and API.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"appid", "api"}),
		wechatRefreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wxoidc_wechat_server_token_refreshes_total",
			Help: `Fetches of a WeChat server access token from WeChat, by appid and result ("ok" or "error").`,
		}, []string{"appid", "result"}),
		storageDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "wxoidc_storage_operation_duration_seconds",
			Help:    `Time of a database round trip, by round trip (begin, commit, batch, or a statement's verb and table) and result ("ok" or "error"; no row counts as "ok").`,
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"op", "result"}),
		logouts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wxoidc_backchannel_logout_attempts_total",
			Help: `Back-channel logout delivery attempts, by client id and outcome ("delivered", "failed" and retried, "abandoned" after the last retry, "dropped" when the client or its URI is gone).`,
		}, []string{"client_id", "outcome"}),
	}
	for _, c := range []prometheus.Collector{
		m.requests, m.requestDuration, m.rateLimited, m.tokens,
		m.wechatCalls, m.wechatDuration, m.wechatRefreshes, m.storageDuration, m.logouts,
	} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.gatherer, promhttp.HandlerOpts{})
}

// TokenIssued counts a token response and names the client in the request's
// log line. It implements provider.Metrics.
func (m *Metrics) TokenIssued(ctx context.Context, grantType, clientID string) {
	m.tokens.WithLabelValues(grantType, clientID).Inc()
	SetClientID(ctx, clientID)
}

// BackchannelLogout counts a back-channel logout delivery attempt. It
// implements provider.LogoutMetrics.
func (m *Metrics) BackchannelLogout(_ context.Context, clientID, outcome string) {
	m.logouts.WithLabelValues(clientID, outcome).Inc()
}

// WeChatCall returns the function to set as [wechat.Client.ObserveCall] of
// the client of appID.
func (m *Metrics) WeChatCall(appID string) func(api string, d time.Duration, err error) {
	return func(api string, d time.Duration, err error) {
		m.wechatCalls.WithLabelValues(appID, api, errcodeLabel(err)).Inc()
		m.wechatDuration.WithLabelValues(appID, api).Observe(d.Seconds())
	}
}

// WeChatTokenRefresh returns the function to set as
// [wechat.Client.ObserveTokenRefresh] of the client of appID.
func (m *Metrics) WeChatTokenRefresh(appID string) func(err error) {
	return func(err error) {
		m.wechatRefreshes.WithLabelValues(appID, result(err)).Inc()
	}
}

// errcodeLabel is WeChat's errcode of err as a label value.
func errcodeLabel(err error) string {
	var ae *wechat.APIError
	switch {
	case err == nil:
		return "0"
	case errors.As(err, &ae):
		return strconv.Itoa(ae.Code)
	case errors.Is(err, wechat.ErrUnavailable):
		return "unavailable"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "canceled"
	}
	return "error"
}

func result(err error) string {
	if err != nil {
		return "error"
	}
	return "ok"
}

func (m *Metrics) observeRequest(route, method string, status int, d time.Duration) {
	k := requestLabels{route, method, status}
	v, ok := m.served.Load(k)
	if !ok {
		v, _ = m.served.LoadOrStore(k, &requestChildren{
			count:    m.requests.WithLabelValues(route, method, strconv.Itoa(status)),
			duration: m.requestDuration.WithLabelValues(route, method),
		})
	}
	c := v.(*requestChildren)
	c.count.Inc()
	c.duration.Observe(d.Seconds())
	if status == http.StatusTooManyRequests {
		m.rateLimited.WithLabelValues(route).Inc()
	}
}

// StorageObserver times every database round trip of a SQL backend into
// wxoidc_storage_operation_duration_seconds, by round trip (begin, commit,
// batch, "select oauth2_refresh", …) and result. Install it with
// storage.Observable.Observe.
func (m *Metrics) StorageObserver() storage.Observer {
	return func(_ context.Context, op string) func(error) {
		start := time.Now()
		return func(err error) {
			m.storageObserver(op, storageResult(err)).Observe(time.Since(start).Seconds())
		}
	}
}

// storageObserver returns the storage histogram's child for op and result,
// looked up once for the results that are "ok".
func (m *Metrics) storageObserver(op, result string) prometheus.Observer {
	if result != "ok" {
		return m.storageDuration.WithLabelValues(op, result)
	}
	if o, ok := m.storageOK.Load(op); ok {
		return o.(prometheus.Observer)
	}
	o, _ := m.storageOK.LoadOrStore(op, m.storageDuration.WithLabelValues(op, result))
	return o.(prometheus.Observer)
}

// storageResult is the result label of a round trip: no row is a normal
// answer (a lookup of an unknown token) and counts as "ok".
func storageResult(err error) string {
	if err == nil || errors.Is(err, sql.ErrNoRows) || errors.Is(err, storage.ErrNotFound) {
		return "ok"
	}
	return "error"
}
