package ops

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"
)

// DefaultPingTimeout bounds the storage check of /readyz.
const DefaultPingTimeout = 2 * time.Second

// Pinger is what readiness needs of storage.
type Pinger interface {
	// Ping reports whether the backend is reachable.
	Ping(ctx context.Context) error
}

// KeysReady is what readiness needs of the key manager.
type KeysReady interface {
	// Ready reports whether signing keys are loaded.
	Ready() bool
}

// Health serves /healthz and /readyz.
type Health struct {
	// Storage is pinged by /readyz. Required.
	Storage Pinger
	// Keys must be ready for /readyz. Required.
	Keys KeysReady
	// PingTimeout bounds the storage ping; 0 means [DefaultPingTimeout].
	PingTimeout time.Duration
	// Logger is told when readiness changes (once per change, not per
	// probe); nil discards.
	Logger *slog.Logger

	// notReady is the last reported state; it only gates logging.
	notReady atomic.Bool
}

// Live answers /healthz: 200 while the process serves HTTP. It checks
// nothing else, so an orchestrator does not restart a process that only
// waits for its database.
func (h *Health) Live(w http.ResponseWriter, _ *http.Request) {
	writeStatus(w, http.StatusOK, map[string]any{"status": "ok"})
}

// Ready answers /readyz: 200 when storage answers a ping within the
// timeout and signing keys are loaded, 503 otherwise. The body names the
// failing check but not the error, which may describe the database; the
// error goes to the log.
func (h *Health) Ready(w http.ResponseWriter, r *http.Request) {
	timeout := h.PingTimeout
	if timeout <= 0 {
		timeout = DefaultPingTimeout
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	checks := map[string]string{"storage": "ok", "keys": "ok"}
	var failed []any
	if err := h.Storage.Ping(ctx); err != nil {
		checks["storage"] = "unreachable"
		failed = append(failed, "storage_error", err.Error())
	}
	if !h.Keys.Ready() {
		checks["keys"] = "not loaded"
		failed = append(failed, "keys", "not loaded")
	}
	if len(failed) > 0 {
		if !h.notReady.Swap(true) {
			h.logger().WarnContext(r.Context(), "not ready", failed...)
		}
		writeStatus(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "checks": checks})
		return
	}
	if h.notReady.Swap(false) {
		h.logger().InfoContext(r.Context(), "ready again")
	}
	writeStatus(w, http.StatusOK, map[string]any{"status": "ok", "checks": checks})
}

func (h *Health) logger() *slog.Logger {
	if h.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return h.Logger
}

func writeStatus(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
