package ops

import (
	"context"
	"database/sql"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/wxoidc/wxoidc/provider/wechat"
	"github.com/wxoidc/wxoidc/storage"
)

// tracerName names wxoidc's tracer (the instrumentation scope).
const tracerName = "github.com/wxoidc/wxoidc"

// Span attributes wxoidc sets besides OpenTelemetry's HTTP and database
// conventions. No span carries a secret, a token, a code or a URL query.
const (
	attrWeChatAPI     = attribute.Key("wechat.api")
	attrWeChatAppID   = attribute.Key("wechat.appid")
	attrWeChatErrcode = attribute.Key("wechat.errcode")
)

func noop(error) {}

// StorageTracer returns a storage.Observer that records each database
// round trip made for a traced request as a child span "db <op>" (with
// db.system.name and db.operation.name; never the statement's arguments),
// or nil when tp is nil.
func StorageTracer(tp trace.TracerProvider, system string) storage.Observer {
	if tp == nil {
		return nil
	}
	t := tp.Tracer(tracerName)
	return func(ctx context.Context, op string) func(error) {
		if !trace.SpanContextFromContext(ctx).IsValid() {
			return noop // background work (janitor, key refresh): no trace to join
		}
		_, span := t.Start(ctx, "db "+op, trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(attribute.String("db.system.name", system), attribute.String("db.operation.name", op)))
		return func(err error) {
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				span.SetStatus(codes.Error, "database error") // the text may quote values
			}
			span.End()
		}
	}
}

// WeChatTracer returns a wechat.Client.TraceCall hook that records each
// attempt of a WeChat API call as a child span "wechat <api>" with the
// API's name, the appid and WeChat's errcode (0 for success), or nil when
// tp is nil. The request URL (which carries the app secret) is never
// recorded.
func WeChatTracer(tp trace.TracerProvider, appID string) func(ctx context.Context, api string) func(error) {
	if tp == nil {
		return nil
	}
	t := tp.Tracer(tracerName)
	return func(ctx context.Context, api string) func(error) {
		if !trace.SpanContextFromContext(ctx).IsValid() {
			return noop
		}
		_, span := t.Start(ctx, "wechat "+api, trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(attrWeChatAPI.String(api), attrWeChatAppID.String(appID)))
		return func(err error) {
			code := 0
			var ae *wechat.APIError
			if errors.As(err, &ae) {
				code = ae.Code
			}
			span.SetAttributes(attrWeChatErrcode.Int(code))
			if err != nil {
				span.SetStatus(codes.Error, wechat.ClassOf(err).String())
			}
			span.End()
		}
	}
}
