package node

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/internal/wire"
	"github.com/zeppelin-kv/zeppelin/partition"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// logBuffer collects a node's JSON log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// records returns the log records with message msg.
func (b *logBuffer) records(t *testing.T, msg string) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b.buf.Bytes()))
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("log line %q: %v", sc.Bytes(), err)
		}
		if rec[slog.MessageKey] == msg {
			out = append(out, rec)
		}
	}
	return out
}

func TestApplyMapReportsAMapItCannotEncode(t *testing.T) {
	store, err := partition.Open(partition.Options{Dir: t.TempDir(), Small: true})
	if err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	// The gate holds the first pull until the encoder has been replaced.
	gate := make(chan struct{})
	meta := &fakeMeta{leader: mapWith(5, false), gate: gate}
	s, err := Start(Config{NodeID: "a", Addr: "a:1", Store: store, Meta: meta,
		HeartbeatInterval: 20 * time.Millisecond,
		Logger:            slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	s.encodeMap = func(any) ([]byte, error) { return nil, errors.New("injected encode failure") }
	close(gate)
	select {
	case <-s.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("node not ready")
	}
	if got := s.Epoch(); got != 5 {
		t.Fatalf("epoch = %d, want 5: the map is served even when it cannot be persisted", got)
	}
	recs := logs.records(t, "node: encode map")
	if len(recs) == 0 {
		t.Fatal("no log record of the map that could not be encoded")
	}
	rec := recs[0]
	if got := rec[slog.LevelKey]; got != slog.LevelError.String() {
		t.Errorf("level = %v, want %v", got, slog.LevelError)
	}
	if got := rec["epoch"]; got != float64(5) {
		t.Errorf("epoch = %v, want 5", got)
	}
	if got := rec["err"]; got != "injected encode failure" {
		t.Errorf("err = %v, want the encoder's error", got)
	}
	if b, err := store.GetMetaFile(metaMap); err != nil || b != nil {
		t.Errorf("persisted map = %q (err %v), want none", b, err)
	}
}

func TestMapKeptUnderTheOldMetaKeyIsRead(t *testing.T) {
	dir := t.TempDir()
	store, err := partition.Open(partition.Options{Dir: dir, Small: true})
	if err != nil {
		t.Fatal(err)
	}
	// A store from before the map had a file of its own.
	b, err := wire.Marshal(mapWith(5, false))
	if err != nil {
		t.Fatal(err)
	}
	if err := store.PutMeta(metaMap, b); err != nil {
		t.Fatal(err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	// A lagging member offers epoch 3: a node that read its map (epoch 5)
	// refuses it and waits for the leader's.
	meta := &fakeMeta{leader: mapWith(6, false), follower: mapWith(3, false)}
	s := startNode(t, dir, meta)
	if got := s.Epoch(); got != 6 {
		t.Fatalf("epoch = %d, want 6", got)
	}
	if b, err := s.store.GetMetaFile(metaMap); err != nil || b == nil {
		t.Fatalf("map file after applying a map: %v (err %v), want one", b, err)
	}
}

func TestPushedMapAppliedWithoutAPull(t *testing.T) {
	meta := &fakeMeta{leader: mapWith(5, false)}
	s := startNode(t, t.TempDir(), meta)
	// From now on the meta group only ever answers pulls with epoch 5:
	// epoch 6 can only come with the notification.
	pushed := mapWith(6, false, placement.Partition{ID: 0, Master: "a", Gen: 1})
	body, err := wire.Marshal(&wire.NotifyRequest{Epoch: 6, Map: pushed})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.handleNotify(context.Background(), body); err != nil {
		t.Fatal(err)
	}
	eventually(t, "pushed map applied", func() bool { return s.Epoch() == 6 })
	eventually(t, "master role from the pushed map", func() bool {
		r := s.replica(rkey{1, 0})
		return r != nil && r.info.Load().role == wire.RoleMaster
	})
	// A notification whose map does not match its epoch is only a hint.
	body, err = wire.Marshal(&wire.NotifyRequest{Epoch: 8, Map: mapWith(7, false)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.handleNotify(context.Background(), body); err != nil {
		t.Fatal(err)
	}
	if m := s.pushed.Load(); m != nil {
		t.Fatalf("kept pushed map %d for a notification of epoch 8", m.Epoch)
	}
}
