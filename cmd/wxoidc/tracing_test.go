package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/wxoidc/wxoidc/provider"
	"github.com/wxoidc/wxoidc/provider/wechat/wechattest"
)

// Tracing is off without OTEL_* endpoints.
func TestNewTracerProvider_OffByDefault(t *testing.T) {
	for _, env := range []map[string]string{
		{},
		{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "true"},
		{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_TRACES_EXPORTER": "none"},
	} {
		tp, err := newTracerProvider(context.Background(), envOf(env))
		if err != nil || tp != nil {
			t.Errorf("env %v: tracer provider %v, %v; want none", env, tp, err)
		}
	}
	tp, err := newTracerProvider(context.Background(), envOf(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}))
	if err != nil || tp == nil {
		t.Fatalf("with an endpoint: %v, %v", tp, err)
	}
	tp.Shutdown(context.Background())
}

// A WeChat grant is one server span named by its route, with a child span
// per WeChat call (API, errcode) and per database round trip; nothing
// secret is recorded, and a traceparent is continued only from a trusted
// proxy.
func TestTracing_GrantSpans(t *testing.T) {
	sim := wechattest.New(wechattest.Config{AnyUserAgent: true})
	simSrv := httptest.NewServer(sim)
	defer simSrv.Close()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer tp.Shutdown(context.Background())

	getenv := envOf(map[string]string{
		"WXOIDC_ISSUER": "http://127.0.0.1:1", "WXOIDC_SECRET": opsSecret,
		"WXOIDC_STORAGE_DSN":     "sqlite://" + filepath.Join(t.TempDir(), "w.db"),
		"WXOIDC_ADMIN_ADDR":      "off",
		"WXOIDC_WECHAT_API_BASE": simSrv.URL, "WXOIDC_WECHAT_OPEN_BASE": simSrv.URL,
	})
	cfg, err := loadConfig("", getenv)
	if err != nil {
		t.Fatal(err)
	}
	cfg.dev = true
	cfg.WeChat.Apps = []WeChatApp{{AppID: miniAppID, Secret: miniAppSecret, Kind: "miniprogram"}}
	cfg.Clients = []ClientConfig{{ClientID: "mini", GrantTypes: []string{provider.GrantTypeWeChat}, Scope: "openid",
		TokenEndpointAuthMethod: "none", WeChatAppID: miniAppID}}
	cfg.tracer = tp
	st, err := buildStack(context.Background(), cfg, true, newLogger(&syncBuffer{}, "json", "error"), fixedAuth{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.store.Close()

	grant := func(h http.Handler, traceparent string) string {
		t.Helper()
		exp.Reset()
		code := simCode(t, simSrv.URL+"/sim/login", url.Values{"appid": {miniAppID}, "user": {"alice"}})
		srv := httptest.NewServer(h)
		defer srv.Close()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/oauth2/token?probe=query-value", strings.NewReader(url.Values{
			"grant_type": {provider.GrantTypeWeChat}, "client_id": {"mini"}, "js_code": {code}, "scope": {"openid"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if traceparent != "" {
			req.Header.Set("Traceparent", traceparent)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("grant: %d %v", resp.StatusCode, body)
		}
		return code
	}

	untrusted, err := publicHandler(cfg, st, st.provider.Handler())
	if err != nil {
		t.Fatal(err)
	}
	const parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	code := grant(untrusted, parent)
	spans := exp.GetSpans()
	var server *tracetest.SpanStub
	for i, s := range spans {
		if s.SpanKind == trace.SpanKindServer {
			server = &spans[i]
		}
	}
	if server == nil || server.Name != "POST /oauth2/token" {
		t.Fatalf("no server span named by the route: %v", names(spans))
	}
	if server.Parent.IsValid() {
		t.Error("an untrusted peer's traceparent was continued")
	}
	var wechatSpan, dbSpans int
	for _, s := range spans {
		if s.SpanKind == trace.SpanKindServer {
			continue
		}
		if s.SpanContext.TraceID() != server.SpanContext.TraceID() {
			t.Errorf("span %q is not in the request's trace", s.Name)
		}
		switch {
		case s.Name == "wechat jscode2session":
			wechatSpan++
			if !hasAttr(s.Attributes, "wechat.api", "jscode2session") || !hasAttr(s.Attributes, "wechat.errcode", "0") {
				t.Errorf("WeChat span attributes %v", s.Attributes)
			}
		case strings.HasPrefix(s.Name, "db "):
			dbSpans++
		}
		for _, a := range s.Attributes {
			v := a.Value.Emit()
			if strings.Contains(v, code) || strings.Contains(v, miniAppSecret) || strings.Contains(v, "query-value") || strings.Contains(v, "secret=") {
				t.Errorf("span %q records a secret or query: %s=%s", s.Name, a.Key, v)
			}
		}
	}
	for _, a := range server.Attributes {
		if strings.Contains(a.Value.Emit(), "query-value") {
			t.Errorf("server span records the URL query: %s", a.Key)
		}
	}
	if wechatSpan != 1 || dbSpans == 0 {
		t.Errorf("child spans: %d WeChat, %d database; want 1 and some: %v", wechatSpan, dbSpans, names(spans))
	}

	// From a trusted proxy the trace goes on.
	cfg.HTTP.TrustedProxies = []string{"127.0.0.1/32"}
	trusted, err := publicHandler(cfg, st, st.provider.Handler())
	if err != nil {
		t.Fatal(err)
	}
	grant(trusted, parent)
	for _, s := range exp.GetSpans() {
		if s.SpanContext.TraceID().String() != "0af7651916cd43dd8448eb211c80319c" {
			t.Errorf("span %q is not in the proxy's trace", s.Name)
		}
	}
}

func names(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}

func hasAttr(attrs []attribute.KeyValue, key, value string) bool {
	for _, a := range attrs {
		if string(a.Key) == key && a.Value.Emit() == value {
			return true
		}
	}
	return false
}
