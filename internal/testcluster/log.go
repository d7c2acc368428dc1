package testcluster

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// testHandler sends log records to t.Log, so they show only when a test
// fails (or with -v). It drops records once the test has finished, because
// background goroutines of other tests may still hold the logger.
type testHandler struct {
	t     testing.TB
	level slog.Level
	done  *atomic.Bool
	attrs []slog.Attr
	mu    *sync.Mutex
}

func newTestLogger(t testing.TB) *slog.Logger {
	level := slog.LevelInfo
	switch strings.ToLower(os.Getenv("ZEPPELIN_TEST_LOG")) {
	case "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error", "off":
		level = slog.LevelError
	}
	done := &atomic.Bool{}
	t.Cleanup(func() { done.Store(true) })
	return slog.New(&testHandler{t: t, level: level, done: done, mu: &sync.Mutex{}})
}

func (h *testHandler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= h.level && !h.done.Load()
}

func (h *testHandler) Handle(_ context.Context, r slog.Record) error {
	if h.done.Load() {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s", r.Time.Format("15:04:05.000"), r.Level, r.Message)
	for _, a := range h.attrs {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
	}
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.done.Load() {
		h.t.Log(b.String())
	}
	return nil
}

func (h *testHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr(nil), h.attrs...), as...)
	return &c
}

func (h *testHandler) WithGroup(string) slog.Handler { return h }
