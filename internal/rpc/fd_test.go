//go:build unix

package rpc

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/internal/wire"
)

// TestFDLimit runs a server in a child process whose file descriptor limit
// is lowered to 128 and floods it with idle connections: the server
// refuses what exceeds its share of descriptors (with an error the dialer
// can read), closes the idle ones after the hello timeout, never runs out
// of descriptors itself, and goes on serving.
func TestFDLimit(t *testing.T) {
	if os.Getenv("ZEPPELIN_FD_CHILD") == "1" {
		fdChild()
		return
	}
	if testing.Short() {
		t.Skip("runs a child process")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestFDLimit$")
	cmd.Env = append(os.Environ(), "ZEPPELIN_FD_CHILD=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		cmd.Wait()
	}()
	out := bufio.NewReader(stdout)
	line, err := out.ReadString('\n')
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "addr ")
	if !ok {
		t.Fatalf("child said %q", line)
	}

	// 300 idle connections, more than the child has descriptors.
	var conns []net.Conn
	refused := 0
	for range 300 {
		nc, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			refused++
			continue
		}
		conns = append(conns, nc)
	}
	closed, answered := 0, 0
	for _, nc := range conns {
		nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		fr := wire.NewFrameReader(nc, 1<<16)
		f, err := fr.Next()
		switch {
		case err == nil && f.Kind == wire.KindError:
			answered++ // refused with a reason, or the hello timeout
		case err != nil:
			closed++
		}
		nc.Close()
	}
	t.Logf("%d connections: %d refused at dial, %d answered with an error, %d closed", 300, refused, answered, closed)
	if answered+closed+refused != 300 {
		t.Fatalf("%d connections still open after the hello timeout", 300-answered-closed-refused)
	}
	// The child is alive and serves a well-behaved dialer.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var c *Conn
	for {
		if c, err = Dial(ctx, DialConfig{}, addr); err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the server does not serve after the flood: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	defer c.Close()
	if err := echoCall(c, "alive"); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(stdin, "stats")
	line, _ = out.ReadString('\n')
	t.Logf("child: %s", strings.TrimSpace(line))
	if !strings.Contains(line, "too many connections") {
		t.Errorf("the child counted no refusal: %s", line)
	}
}

// fdChild is the child of TestFDLimit: a server with 128 descriptors.
func fdChild() {
	rl := syscall.Rlimit{Cur: 128, Max: 128}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		fmt.Println("setrlimit:", err)
		os.Exit(1)
	}
	s := NewServer(ServerConfig{HelloTimeout: time.Second})
	s.Handle(wire.KindRead, func(_ context.Context, body []byte) (any, error) {
		var e echo
		err := wire.Unmarshal(body, &e)
		return &e, err
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println("listen:", err)
		os.Exit(1)
	}
	go s.Serve(ln)
	fmt.Println("addr", ln.Addr())
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		fmt.Printf("%+v\n", s.Stats())
	}
	s.Close()
	os.Exit(0)
}
