package nodeagent

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/regshift/regshift/nodeagent/agentapi"
)

// StatusFunc returns the agent's current status.
type StatusFunc func() agentapi.Status

// MaxLongPoll caps the wait of a long-poll resolve.
const MaxLongPoll = 5 * time.Minute

// NewAPIHandler serves the local API for the host's apps:
//
//	GET /v1/resolve/{service}              current endpoints
//	GET /v1/resolve/{service}?index=N&wait=30s
//	                                       returns when the answer's index passes N,
//	                                       or after wait with the current answer
//	GET /v1/registrations                  this host's registrations per interface
//	GET /v1/status                         interfaces, primary, last command
//	GET /healthz
func NewAPIHandler(hub *Hub, status StatusFunc, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/resolve/{service}", func(w http.ResponseWriter, r *http.Request) {
		service := r.PathValue("service")
		q := r.URL.Query()
		if q.Has("index") {
			after, err := strconv.ParseUint(q.Get("index"), 10, 64)
			if err != nil {
				writeError(w, http.StatusBadRequest, "index: %v", err)
				return
			}
			wait := 30 * time.Second
			if q.Has("wait") {
				if wait, err = time.ParseDuration(q.Get("wait")); err != nil || wait <= 0 {
					writeError(w, http.StatusBadRequest, "wait: %q is not a positive duration", q.Get("wait"))
					return
				}
			}
			ctx, cancel := context.WithTimeout(r.Context(), min(wait, MaxLongPoll))
			defer cancel()
			res, ok := hub.Wait(ctx, service, after)
			answer(w, service, res, ok)
			return
		}
		res, ok := hub.Get(service)
		answer(w, service, res, ok)
	})
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, status())
	})
	mux.HandleFunc("GET /v1/registrations", func(w http.ResponseWriter, _ *http.Request) {
		regs := status().Registrations
		if regs == nil {
			regs = []agentapi.Registration{}
		}
		writeJSON(w, http.StatusOK, regs)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	return logRequests(mux, log)
}

func answer(w http.ResponseWriter, service string, res agentapi.Resolution, ok bool) {
	if !ok {
		writeError(w, http.StatusNotFound, "service %q is not consumed by this host", service)
		return
	}
	w.Header().Set("X-Regshift-Index", strconv.FormatUint(res.Index, 10))
	if res.Endpoints == nil {
		res.Endpoints = []agentapi.Endpoint{}
	}
	writeJSON(w, http.StatusOK, res)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, format string, args ...any) {
	writeJSON(w, code, agentapi.Error{Message: fmt.Sprintf(format, args...)})
}

func logRequests(h http.Handler, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		h.ServeHTTP(w, r)
		log.Debug("api request", "method", r.Method, "path", r.URL.Path, "took", time.Since(start))
	})
}

// ListenAPI opens the local API's listener: "unix:/path" for a unix socket
// (a stale socket file is replaced), otherwise a loopback TCP address.
func ListenAPI(addr string) (net.Listener, error) {
	if err := checkListen(addr); err != nil {
		return nil, err
	}
	if sock, ok := strings.CutPrefix(addr, "unix:"); ok {
		if err := os.Remove(sock); err != nil && !os.IsNotExist(err) {
			return nil, err
		}
		return net.Listen("unix", sock)
	}
	return net.Listen("tcp", addr)
}
