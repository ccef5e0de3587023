package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// newTracerProvider returns the tracer provider the standard OpenTelemetry
// environment variables ask for: spans sent by OTLP over HTTP to
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT (with
// OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT, … as the exporter reads them),
// named by OTEL_SERVICE_NAME (default wxoidc) and sampled by
// OTEL_TRACES_SAMPLER. It returns nil — tracing off, at no cost — when no
// endpoint is set, OTEL_SDK_DISABLED is true or OTEL_TRACES_EXPORTER is
// none.
func newTracerProvider(ctx context.Context, getenv func(string) string) (*sdktrace.TracerProvider, error) {
	if getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" && getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" ||
		strings.EqualFold(getenv("OTEL_SDK_DISABLED"), "true") || getenv("OTEL_TRACES_EXPORTER") == "none" {
		return nil, nil
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	res, err := resource.Merge(resource.NewSchemaless(attribute.String("service.name", "wxoidc")),
		resource.Environment())
	if err != nil {
		return nil, fmt.Errorf("trace resource: %w", err)
	}
	return sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res)), nil
}

// startTracing sets cfg's tracer from the environment (newTracerProvider)
// and returns the function that flushes and stops it.
func startTracing(ctx context.Context, cfg *Config, getenv func(string) string, log *slog.Logger) (stop func(), err error) {
	tp, err := newTracerProvider(ctx, getenv)
	if err != nil || tp == nil {
		return func() {}, err
	}
	cfg.tracer = tp
	log.Info("tracing on: spans go to the OTLP endpoint of the OTEL_* environment")
	return func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := tp.Shutdown(sctx); err != nil {
			log.Warn("flush traces", "error", err)
		}
	}, nil
}
