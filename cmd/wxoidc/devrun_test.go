package main

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/wxoidc/wxoidc/provider/wechat/wechattest"
)

// devRun is `wxoidc dev` built the way runDev builds it (devConfig,
// buildStack, devMux) on a listener of its own, for the browser tests;
// with replicas, more stacks on one PostgreSQL schema, each on its own
// server.
type devRun struct {
	cfg    Config
	issuer string
	sim    *wechattest.Server
	// stacks[0] serves the issuer (with the simulator and the demo); the
	// others serve the provider alone at urls[i].
	stacks []*stack
	urls   []string
}

// devRunOptions say how a devRun differs from `wxoidc dev`.
type devRunOptions struct {
	// replicas is the number of stacks beyond the first; they need
	// PostgreSQL (the test skips without WXOIDC_TEST_POSTGRES_DSN).
	replicas int
	// configure changes the dev configuration before the stacks start.
	configure func(*Config)
	// log receives every stack's log; nil discards it.
	log *slog.Logger
	// sim configures the simulator. It pushes to the last stack.
	sim wechattest.Config
}

func startDevRun(t *testing.T, o devRunOptions) *devRun {
	t.Helper()
	front := httptest.NewUnstartedServer(nil)
	t.Cleanup(front.Close)
	cfg, err := devConfig(devOptions{addr: front.Listener.Addr().String(), data: t.TempDir(), adminAddr: "off"}, strings.Repeat("dev-run-test-secret-", 3))
	if err != nil {
		t.Fatal(err)
	}
	cfg.dev = true
	if o.replicas > 0 {
		cfg.Storage.DSN = pgSchema(t)
	}
	if o.configure != nil {
		o.configure(&cfg)
	}
	log := o.log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	stackOf := func() *stack {
		st, err := buildStack(ctx, cfg, true, log, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.store.Close() })
		for _, run := range st.background {
			go run(ctx)
		}
		return st
	}
	d := &devRun{cfg: cfg, issuer: cfg.Issuer, stacks: []*stack{stackOf()}, urls: []string{cfg.Issuer}}
	for range o.replicas {
		st := stackOf()
		srv := httptest.NewServer(st.provider.Handler())
		t.Cleanup(srv.Close)
		d.stacks, d.urls = append(d.stacks, st), append(d.urls, srv.URL)
	}
	d.sim = wechattest.New(o.sim)
	mux, err := devMux(cfg, d.stacks[0], d.sim, d.urls[len(d.urls)-1])
	if err != nil {
		t.Fatal(err)
	}
	front.Config.Handler = mux
	front.Start()
	return d
}

// admin serves the admin API (and console) of stack i on a server of its
// own, as serve's admin listener does, and returns its base URL.
func (d *devRun) admin(t *testing.T, i int) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	h, err := adminHandler(context.Background(), d.cfg, d.stacks[i], srv.Listener.Addr())
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = h
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL
}
