package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"time"
)

// respBench runs bench requests over one RESP connection, pipelining a
// round of requests before reading their replies.
type respBench struct {
	conn     net.Conn
	r        *bufio.Reader
	w        *bufio.Writer
	timeout  time.Duration
	value    []byte
	keyspace int
	args     [][]byte
}

// respError is an error reply ("-ERR ...") from the server.
type respError string

func (e respError) Error() string { return "server replied: " + string(e) }

// dialRESPBench connects to addr and SELECTs table when it is not empty.
// Requests write value under keys drawn from keyspace.
func dialRESPBench(addr, table string, timeout time.Duration, value []byte, keyspace int) (*respBench, error) {
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	b := &respBench{
		conn: conn, r: bufio.NewReaderSize(conn, 64<<10), w: bufio.NewWriterSize(conn, 64<<10),
		timeout: timeout, value: value, keyspace: keyspace,
	}
	if table != "" {
		b.command([]byte("SELECT"), []byte(table))
		if err := b.flush(); err != nil {
			conn.Close()
			return nil, err
		}
		if _, err := b.readReply(); err != nil {
			conn.Close()
			return nil, fmt.Errorf("SELECT %s: %w", table, err)
		}
	}
	return b, nil
}

// command buffers one command as an array of bulk strings.
func (b *respBench) command(args ...[]byte) {
	fmt.Fprintf(b.w, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(b.w, "$%d\r\n", len(a))
		b.w.Write(a)
		b.w.WriteString("\r\n")
	}
}

func (b *respBench) flush() error {
	_ = b.conn.SetDeadline(time.Now().Add(b.timeout))
	return b.w.Flush()
}

func (b *respBench) run(ctx context.Context, test string, n int, rnd *rand.Rand) ([]error, error) {
	for range n {
		args := b.args[:0]
		switch test {
		case "set":
			args = append(args, []byte("SET"), benchKey("key", rnd, b.keyspace), b.value)
		case "get":
			args = append(args, []byte("GET"), benchKey("key", rnd, b.keyspace))
		case "incr":
			args = append(args, []byte("INCR"), benchKey("counter", rnd, b.keyspace))
		case "mset":
			args = append(args, []byte("MSET"))
			for range msetKeys {
				args = append(args, benchKey("key", rnd, b.keyspace), b.value)
			}
		}
		b.args = args
		b.command(args...)
	}
	if err := b.flush(); err != nil {
		return nil, err
	}
	var failed []error
	for range n {
		if _, err := b.readReply(); err != nil {
			var re respError
			if !errors.As(err, &re) {
				return failed, err
			}
			failed = append(failed, err)
		}
	}
	return failed, ctx.Err()
}

// readReply reads one RESP2 reply. An error reply is returned as a
// respError; a nested error inside an array is not unwrapped.
func (b *respBench) readReply() (any, error) {
	line, err := b.r.ReadSlice('\n')
	if err != nil {
		return nil, err
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return nil, fmt.Errorf("protocol error: malformed line %q", line)
	}
	body := string(line[1 : len(line)-2])
	switch line[0] {
	case '+':
		return body, nil
	case '-':
		return nil, respError(body)
	case ':':
		return strconv.ParseInt(body, 10, 64)
	case '$':
		n, err := strconv.Atoi(body)
		if err != nil {
			return nil, fmt.Errorf("protocol error: bulk length %q", body)
		}
		if n < 0 {
			return nil, nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(b.r, buf); err != nil {
			return nil, err
		}
		return buf[:n], nil
	case '*':
		n, err := strconv.Atoi(body)
		if err != nil {
			return nil, fmt.Errorf("protocol error: array length %q", body)
		}
		if n < 0 {
			return nil, nil
		}
		out := make([]any, 0, n)
		for range n {
			v, err := b.readReply()
			var re respError
			if err != nil && !errors.As(err, &re) {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	}
	return nil, fmt.Errorf("protocol error: unexpected reply type %q", line[0])
}

func (b *respBench) Close() error { return b.conn.Close() }
