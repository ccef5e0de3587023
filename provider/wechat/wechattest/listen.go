package wechattest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"
)

// ErrNonLoopback is returned by [CheckAddr] and [ListenAndServe] for an
// address that is not on the loopback interface.
var ErrNonLoopback = errors.New("wechattest: refusing a non-loopback address: the simulator hands out logins for any user")

// CheckAddr returns an error wrapping [ErrNonLoopback] unless addr
// (host:port) names a loopback host (localhost, 127.0.0.0/8, ::1) or
// allowNonLoopback is set. An empty host (all interfaces) is not loopback.
func CheckAddr(addr string, allowNonLoopback bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("wechattest: address %q: %w", addr, err)
	}
	if allowNonLoopback {
		return nil
	}
	if strings.EqualFold(host, "localhost") {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("%w: %q (use 127.0.0.1, or allow it explicitly)", ErrNonLoopback, addr)
}

// ListenAndServe serves s on addr until ctx ends, then shuts down
// gracefully. It refuses a non-loopback addr unless allowNonLoopback is
// set; setting it exposes logins for any user to the network, so it MUST
// NOT be used outside an isolated test network. It returns nil after a
// shutdown caused by ctx.
func ListenAndServe(ctx context.Context, addr string, allowNonLoopback bool, s *Server) error {
	if err := CheckAddr(addr, allowNonLoopback); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("wechattest: listen: %w", err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves s on ln until ctx ends, then shuts down gracefully and
// returns nil. It does not check the address: the caller chose ln.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      5 * time.Minute, // latency faults may be long
		IdleTimeout:       2 * time.Minute,
	}
	s.log.Info("wechat simulator listening", "addr", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("wechattest: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("wechattest: shutdown: %w", err)
	}
	<-errc
	return nil
}
