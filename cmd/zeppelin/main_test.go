package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/internal/poll"
)

// zeppelinBin is the binary built once by TestMain; the tests run it as
// separate processes.
var zeppelinBin string

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "zeppelin-cmd-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	zeppelinBin = filepath.Join(dir, "zeppelin")
	build := exec.Command("go", "build", "-o", zeppelinBin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n", err)
		return 1
	}
	return m.Run()
}

// syncBuffer is a bytes.Buffer safe for a process writing while a test
// reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// proc is one running zeppelin process. Its methods report failures to
// the test they are given, which may be a subtest of the one that owns the
// process.
type proc struct {
	owner  *testing.T // kills the process when it ends
	name   string
	args   []string
	cmd    *exec.Cmd
	stdout *syncBuffer
	stderr *syncBuffer
	done   chan struct{} // closed when the process has exited
	state  *os.ProcessState
}

// startProc starts the binary with args. The process is killed when the
// test ends if it is still running, and its output is logged when the test
// failed.
func startProc(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	p := &proc{owner: t, name: name, args: args, stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(zeppelinBin, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		_ = p.cmd.Wait()
		p.state = p.cmd.ProcessState
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("---- %s %s\nstdout:\n%s\nstderr (last 40 lines):\n%s", name, strings.Join(args, " "), p.stdout.String(), lastLines(p.stderr.String(), 40))
		}
	})
	return p
}

// restart starts the same command again, after the process has exited;
// the new process belongs to the same test as p.
func (p *proc) restart(t *testing.T) *proc {
	t.Helper()
	select {
	case <-p.done:
	default:
		t.Fatalf("restart %s: still running", p.name)
	}
	return startProc(p.owner, p.name, p.args...)
}

// kill sends SIGKILL (if the process still runs) and waits for it.
func (p *proc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// signal sends sig to the process.
func (p *proc) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %s: %v", p.name, err)
	}
}

// wait waits up to d for the process to exit and returns its exit code.
func (p *proc) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.state.ExitCode()
	case <-time.After(d):
		t.Fatalf("%s did not exit within %v", p.name, d)
		return -1
	}
}

// waitReady waits for the "zeppelin ready" line and returns its fields.
func (p *proc) waitReady(t *testing.T, d time.Duration) map[string]string {
	t.Helper()
	var fields map[string]string
	waitFor(t, d, p.name+" ready", func() string {
		select {
		case <-p.done:
			t.Fatalf("%s exited (%s) before it was ready: %s", p.name, exitCodeOf(p.state), lastLines(p.stderr.String(), 5))
		default:
		}
		for line := range strings.Lines(p.stdout.String()) {
			if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "zeppelin ready "); ok {
				fields = map[string]string{}
				for f := range strings.FieldsSeq(rest) {
					k, v, _ := strings.Cut(f, "=")
					fields[k] = v
				}
				return ""
			}
		}
		return "no ready line yet"
	})
	return fields
}

// waitFor polls cond (poll.Until) until it returns "" or d passes; cond
// returns why the condition does not hold yet, which the failure reports.
func waitFor(t *testing.T, d time.Duration, what string, cond func() string) {
	t.Helper()
	var why string
	if err := poll.Until(d, func() error {
		if why = cond(); why != "" {
			return errors.New(why)
		}
		return nil
	}); err != nil {
		t.Fatalf("timed out after %v waiting for %s: %s", d, what, why)
	}
}

// cliResult is the outcome of one short-lived command.
type cliResult struct {
	stdout, stderr string
	code           int
}

// runBin runs the zeppelin binary to completion (at most d).
func runBin(t *testing.T, d time.Duration, args ...string) cliResult {
	t.Helper()
	return runTool(t, d, "", zeppelinBin, args...)
}

// runTool runs a program with stdin to completion (at most d) and returns
// its output and exit code.
func runTool(t *testing.T, d time.Duration, stdin, prog string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := exec.CommandContext(ctx, prog, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	err := cmd.Run()
	r := cliResult{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("%s %s: timed out after %v\nstdout: %s\nstderr: %s", filepath.Base(prog), strings.Join(args, " "), d, r.stdout, r.stderr)
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("%s: %v", prog, err)
	}
	return r
}

// freePorts returns n distinct TCP ports that were free a moment ago.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	ports := make([]int, n)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports[i] = ln.Addr().(*net.TCPAddr).Port
	}
	return ports
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// nonEmptyLines returns the lines of s that are not blank.
func nonEmptyLines(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// exitCodeOf reports a process state's exit code, or the signal that
// ended it.
func exitCodeOf(ps *os.ProcessState) string {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return "signal " + ws.Signal().String()
	}
	return fmt.Sprint(ps.ExitCode())
}
