package main

import (
	"context"
	"log/slog"
	"sync"
)

// gateHandler holds log records back until its gate opens, so that a
// failed start prints only its one-line error, not the logs of the parts
// that started and were closed again. Clones made by WithAttrs and
// WithGroup share the gate.
type gateHandler struct {
	next slog.Handler
	g    *logGate
}

// logGate is the state gateHandlers share.
type logGate struct {
	mu   sync.Mutex
	open bool
	held []heldRecord
}

type heldRecord struct {
	h slog.Handler
	r slog.Record
}

var _ slog.Handler = (*gateHandler)(nil)

func newGateHandler(next slog.Handler) (*gateHandler, *logGate) {
	g := &logGate{}
	return &gateHandler{next: next, g: g}, g
}

func (h *gateHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *gateHandler) Handle(ctx context.Context, r slog.Record) error {
	h.g.mu.Lock()
	if !h.g.open {
		h.g.held = append(h.g.held, heldRecord{h: h.next, r: r.Clone()})
		h.g.mu.Unlock()
		return nil
	}
	h.g.mu.Unlock()
	return h.next.Handle(ctx, r)
}

func (h *gateHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &gateHandler{next: h.next.WithAttrs(as), g: h.g}
}

func (h *gateHandler) WithGroup(name string) slog.Handler {
	return &gateHandler{next: h.next.WithGroup(name), g: h.g}
}

// release opens the gate. With flush the held records are written first,
// in order; otherwise they are dropped.
func (g *logGate) release(flush bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.open {
		return
	}
	g.open = true
	if flush {
		for _, hr := range g.held {
			_ = hr.h.Handle(context.Background(), hr.r)
		}
	}
	g.held = nil
}
