package transport

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// echoServer listens as host on the hub and echoes every connection.
func echoServer(t *testing.T, h *Hub, host string) string {
	t.Helper()
	ln, err := h.Host(host).Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

func dial(t *testing.T, h *Hub, from, addr string) net.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := h.Host(from).Dial(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip writes msg and reads the echo, failing after timeout.
func roundTrip(c net.Conn, msg string, timeout time.Duration) (string, error) {
	if err := c.SetDeadline(time.Now().Add(timeout)); err != nil {
		return "", err
	}
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write([]byte(msg)); err != nil {
		return "", err
	}
	buf := make([]byte, len(msg))
	_, err := io.ReadFull(c, buf)
	return string(buf), err
}

func TestHubPauseHoldsTrafficUntilResume(t *testing.T) {
	for _, paused := range []string{"server", "client"} {
		t.Run("pause "+paused, func(t *testing.T) {
			h := NewHub(nil)
			addr := echoServer(t, h, "server")
			c := dial(t, h, "client", addr)
			if got, err := roundTrip(c, "before", time.Second); err != nil || got != "before" {
				t.Fatalf("before the pause: %q %v", got, err)
			}
			h.Pause(paused)
			if !h.Paused(paused) {
				t.Fatalf("Paused(%s) = false after Pause", paused)
			}
			// A write with a deadline fails once the deadline passes.
			if err := c.SetWriteDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Write([]byte("late")); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("write while paused: %v, want a deadline error", err)
			}
			if err := c.SetWriteDeadline(time.Time{}); err != nil {
				t.Fatal(err)
			}
			// A write without one is held and delivered after Resume.
			done := make(chan error, 1)
			go func() {
				_, err := c.Write([]byte("during"))
				done <- err
			}()
			select {
			case err := <-done:
				t.Fatalf("a write completed while %s is paused: %v", paused, err)
			case <-time.After(100 * time.Millisecond):
			}
			h.Resume(paused)
			if err := <-done; err != nil {
				t.Fatalf("held write: %v", err)
			}
			buf := make([]byte, len("during"))
			if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "during" {
				t.Fatalf("after resume: %q %v", buf, err)
			}
		})
	}
}

func TestHubPausedHostDialsAfterResume(t *testing.T) {
	h := NewHub(nil)
	addr := echoServer(t, h, "server")
	h.Pause("client")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	_, err := h.Host("client").Dial(ctx, addr)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("dial from a paused host: %v, want it to wait until the deadline", err)
	}
	h.Resume("client")
	c := dial(t, h, "client", addr)
	if got, err := roundTrip(c, "hello", 5*time.Second); err != nil || got != "hello" {
		t.Fatalf("after resume: %q %v", got, err)
	}
}

func TestHubClosingAPausedConnectionUnblocksIt(t *testing.T) {
	h := NewHub(nil)
	addr := echoServer(t, h, "server")
	c := dial(t, h, "client", addr)
	h.Pause("server")
	done := make(chan error, 1)
	go func() {
		_, err := c.Write([]byte("x"))
		done <- err
	}()
	c.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("write on a closed paused connection succeeded")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("closing did not unblock a held write")
	}
	h.Resume("server")
}
