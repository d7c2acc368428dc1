package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is an io.Writer that the program writes to while the test
// reads, and that tells waiters when it grows.
type syncBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{} // closed and replaced on every write
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{changed: make(chan struct{})} }

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	close(b.changed)
	b.changed = make(chan struct{})
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor waits until the output matches re and returns the match.
func (b *syncBuffer) waitFor(ctx context.Context, re *regexp.Regexp) ([]string, error) {
	for {
		b.mu.Lock()
		m := re.FindStringSubmatch(b.buf.String())
		changed := b.changed
		b.mu.Unlock()
		if m != nil {
			return m, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for %q in the output: %w", re, ctx.Err())
		case <-changed:
		}
	}
}

// call makes one request to the app and decodes its JSON answer, if any.
func call(t *testing.T, ctx context.Context, method, url, token string, form url.Values) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if resp.StatusCode != http.StatusNoContent {
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatalf("%s %s: %d, decode the answer: %v", method, url, resp.StatusCode, err)
		}
	}
	return resp.StatusCode, body
}

func TestSessions(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Zeppelin server")
	}
	// The app's temporary directory is created under TMPDIR: check that
	// it is gone when the app returns.
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	appCtx, stop := context.WithCancel(ctx)
	out := newSyncBuffer()
	done := make(chan error, 1)
	go func() { done <- run(appCtx, []string{"-http", "127.0.0.1:0", "-ttl", "2s"}, out) }()
	// SIGINT or SIGTERM cancels run's context: it shuts down and returns.
	shutdown := sync.OnceValue(func() error {
		stop()
		return <-done
	})
	t.Cleanup(func() {
		shutdown()
		t.Logf("output:\n%s", out)
	})

	m, err := out.waitFor(ctx, regexp.MustCompile(`listening on (http://\S+)`))
	if err != nil {
		t.Fatal(err)
	}
	base := m[1]

	// Log in, read the session, log out, and the session is gone.
	code, body := call(t, ctx, "POST", base+"/login", "", url.Values{"user": {"alice"}})
	token, _ := body["token"].(string)
	if code != http.StatusCreated || token == "" || body["user"] != "alice" {
		t.Fatalf("login: %d %v", code, body)
	}
	code, body = call(t, ctx, "GET", base+"/me", token, nil)
	if exp, _ := body["expires_in"].(float64); code != http.StatusOK || body["user"] != "alice" || exp <= 0 || exp > 2 {
		t.Fatalf("me after login: %d %v, want 200 alice expiring within 2 s", code, body)
	}
	if code, body = call(t, ctx, "POST", base+"/logout", token, nil); code != http.StatusNoContent {
		t.Fatalf("logout: %d %v", code, body)
	}
	if code, body = call(t, ctx, "GET", base+"/me", token, nil); code != http.StatusUnauthorized {
		t.Fatalf("me after logout: %d %v, want 401", code, body)
	}
	if code, body = call(t, ctx, "GET", base+"/me", "", nil); code != http.StatusUnauthorized {
		t.Errorf("me without a token: %d %v, want 401", code, body)
	}
	if code, body = call(t, ctx, "POST", base+"/login", "", url.Values{}); code != http.StatusBadRequest {
		t.Errorf("login without a user: %d %v, want 400", code, body)
	}

	// A session the user never ends expires with its TTL.
	code, body = call(t, ctx, "POST", base+"/login", "", url.Values{"user": {"bob"}})
	token, _ = body["token"].(string)
	if code != http.StatusCreated || token == "" {
		t.Fatalf("login: %d %v", code, body)
	}
	start := time.Now()
	wait := 50 * time.Millisecond
	for {
		code, body = call(t, ctx, "GET", base+"/me", token, nil)
		if code == http.StatusUnauthorized {
			break
		}
		if code != http.StatusOK || body["user"] != "bob" {
			t.Fatalf("me before the session expired: %d %v", code, body)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the session has not expired: %v", ctx.Err())
		case <-time.After(wait):
		}
		wait = min(2*wait, 400*time.Millisecond)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the session expired after %v, want about 2 s", d)
	}

	if err := shutdown(); err != nil {
		t.Errorf("run: %v", err)
	}
	if !strings.Contains(out.String(), "stopped") {
		t.Error("output lacks the shutdown")
	}
	ents, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "zeppelin-app-") {
			t.Errorf("%s left behind", e.Name())
		}
	}
}
