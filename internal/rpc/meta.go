package rpc

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/zeppelin-kv/zeppelin/internal/wire"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// ErrNoMeta means no meta member could be reached.
var ErrNoMeta = errors.New("rpc: no meta member reachable")

// MetaCaller calls the meta group: it learns the members' addresses from
// seeds (any member of the cluster answers Hello with the meta members it
// knows), follows not-leader redirections, and moves on to the next member
// when one is unreachable. It is safe for concurrent use.
type MetaCaller struct {
	pool *Pool

	mu      sync.Mutex
	seeds   []string
	members []string // meta members' RPC addresses
	leader  string   // last known leader address
	// hintTerm is the Raft term of the newest leader announcement taken.
	hintTerm uint64
	// former lists, most recent first, addresses that were members and
	// left the list: a map of a meta group still forming lists only some
	// of its members, and a node that took it would otherwise know no
	// other member when the one it knows stops answering. They are tried
	// after the members.
	former []string
	// silent holds the members whose last attempt ran out of time without
	// an answer (paused, cut off): they are tried after the others until
	// they answer again.
	silent map[string]bool
}

// NewMetaCaller returns a caller that dials through pool and starts from
// seeds (RPC addresses of any members, meta or not).
func NewMetaCaller(pool *Pool, seeds []string) *MetaCaller {
	return &MetaCaller{pool: pool, seeds: slices.Clone(seeds)}
}

// SetMembers replaces the known meta members (from a map or a Hello).
func (m *MetaCaller) SetMembers(members []placement.MetaMember) {
	var addrs []string
	for _, mm := range members {
		if mm.RPCAddr != "" {
			addrs = append(addrs, mm.RPCAddr)
		}
	}
	if len(addrs) == 0 {
		return
	}
	slices.Sort(addrs)
	m.mu.Lock()
	for _, a := range m.members {
		if !slices.Contains(addrs, a) {
			m.former = slices.Insert(slices.DeleteFunc(m.former, func(f string) bool { return f == a }), 0, a)
		}
	}
	m.former = slices.DeleteFunc(m.former, func(f string) bool { return slices.Contains(addrs, f) })
	m.former = m.former[:min(len(m.former), maxFormer)]
	m.members = addrs
	if m.leader != "" && !slices.Contains(addrs, m.leader) {
		m.leader = ""
	}
	m.mu.Unlock()
}

// maxFormer bounds MetaCaller.former.
const maxFormer = 8

// AddSeeds adds addresses to try when no meta member is known.
func (m *MetaCaller) AddSeeds(addrs ...string) {
	m.mu.Lock()
	for _, a := range addrs {
		if a != "" && !slices.Contains(m.seeds, a) {
			m.seeds = append(m.seeds, a)
		}
	}
	m.mu.Unlock()
}

// Members returns the known meta members' addresses.
func (m *MetaCaller) Members() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.members)
}

// LeaderHint makes addr, which announced itself as the leader of Raft term
// term, the first member tried by leader-only calls, unless an
// announcement of a later term was taken already. A wrong hint costs one
// attempt: the member answers not-leader, or does not answer.
func (m *MetaCaller) LeaderHint(addr string, term uint64) {
	if addr == "" {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if term < m.hintTerm {
		return
	}
	m.hintTerm = term
	m.leader = addr
	if !slices.Contains(m.members, addr) {
		m.members = append(m.members, addr)
		slices.Sort(m.members)
		m.former = slices.DeleteFunc(m.former, func(f string) bool { return f == addr })
	}
}

// Leader returns the last known leader address, or "".
func (m *MetaCaller) Leader() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.leader
}

// candidates returns the addresses to try: the leader first, then the
// other members in random order (to spread the load), then former members;
// those that went silent come last.
func (m *MetaCaller) candidates() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, 0, 1+len(m.members)+len(m.former))
	add := func(addrs []string, silent, shuffle bool) {
		start := len(out)
		for _, a := range addrs {
			if a != "" && m.silent[a] == silent && !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
		if rest := out[start:]; shuffle {
			rand.Shuffle(len(rest), func(i, j int) { rest[i], rest[j] = rest[j], rest[i] })
		}
	}
	for _, silent := range []bool{false, true} {
		add([]string{m.leader}, silent, false)
		add(m.members, silent, true)
		add(m.former, silent, false)
	}
	return out
}

// heard records whether addr answered (anything) or let an attempt run
// out.
func (m *MetaCaller) heard(addr string, answered bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case answered:
		delete(m.silent, addr)
	case m.silent == nil:
		m.silent = map[string]bool{addr: true}
	default:
		m.silent[addr] = true
	}
}

// discover asks seeds for the meta members.
func (m *MetaCaller) discover(ctx context.Context) error {
	m.mu.Lock()
	seeds := slices.Clone(m.seeds)
	m.mu.Unlock()
	var errs []error
	for _, s := range seeds {
		c, err := m.pool.Get(ctx, s)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		h := c.Hello()
		if len(h.Meta) > 0 {
			m.SetMembers(h.Meta)
			return nil
		}
		if h.Roles&wire.RoleMeta != 0 {
			m.SetMembers([]placement.MetaMember{{RPCAddr: s}})
			return nil
		}
		errs = append(errs, fmt.Errorf("%s knows no meta member yet", s))
	}
	if len(errs) == 0 {
		return fmt.Errorf("%w: no seed addresses", ErrNoMeta)
	}
	allAuth := true
	for _, err := range errs {
		allAuth = allAuth && errors.Is(err, ErrAuth)
	}
	if allAuth {
		// Every seed answered, refusing the credentials: the meta group
		// is reachable, this process may not talk to it.
		return errors.Join(errs...)
	}
	return fmt.Errorf("%w: %w", ErrNoMeta, errors.Join(errs...))
}

// Call sends a request to the meta group. With leaderOnly it follows
// not-leader replies to the leader; otherwise the first member that answers
// wins. It retries across members, backing off while no member is reachable
// or no leader is elected, until ctx ends. Only ctx bounds an attempt, so
// it suits calls that may legitimately take long (admin operations).
func (m *MetaCaller) Call(ctx context.Context, leaderOnly bool, kind wire.Kind, req, resp any) error {
	return m.CallBounded(ctx, 0, leaderOnly, kind, req, resp)
}

// CallBounded is Call with each member's attempt bounded by attempt (0: by
// ctx only). A member that stops answering in the middle of a call — a
// paused process, a link that silently drops traffic — then costs one
// attempt, not the whole call: the caller moves on to the next member, and
// stops sending to a silent leader first.
func (m *MetaCaller) CallBounded(ctx context.Context, attempt time.Duration, leaderOnly bool, kind wire.Kind, req, resp any) error {
	backoff := 5 * time.Millisecond
	var last error
	try := func(addr string) error {
		actx, cancel := attemptContext(ctx, attempt)
		defer cancel()
		err := m.pool.Call(actx, addr, kind, req, resp)
		var we *wire.Error
		switch {
		case err != nil && ctx.Err() == nil && actx.Err() != nil:
			// This member did not answer in time; the call goes on, and
			// later calls try it last until it answers.
			m.heard(addr, false)
			return fmt.Errorf("%w: %s did not answer within %v", ErrConnLost, addr, attempt)
		case err == nil || errors.As(err, &we):
			m.heard(addr, true)
		}
		return err
	}
	setLeader := func(addr string) {
		if leaderOnly {
			m.mu.Lock()
			m.leader = addr
			m.mu.Unlock()
		}
	}
	for {
		if len(m.Members()) == 0 {
			if err := m.discover(ctx); err != nil {
				last = err
				if errors.Is(err, ErrAuth) {
					return err // waiting will not mend the credentials
				}
			}
		}
		var authErr error
		for _, addr := range m.candidates() {
			err := try(addr)
			if err == nil {
				setLeader(addr)
				return nil
			}
			last = err
			if ctx.Err() != nil {
				return fmt.Errorf("%w (last error: %w)", ctx.Err(), last)
			}
			var we *wire.Error
			if errors.As(err, &we) {
				switch we.Code {
				case wire.CodeNotLeader:
					if we.Addr != "" && we.Addr != addr {
						if err := try(we.Addr); err == nil {
							m.mu.Lock()
							m.leader = we.Addr
							m.mu.Unlock()
							return nil
						} else {
							last = err
							if !retryableMeta(err) {
								return err
							}
							m.forgetLeader(we.Addr)
						}
					}
					continue
				case wire.CodeUnavailable, wire.CodeClosed, wire.CodeWait, wire.CodeTimeout:
					continue
				default:
					return err // a real answer
				}
			}
			if IsConnError(err) {
				m.forgetLeader(addr)
				continue
			}
			if errors.Is(err, ErrAuth) {
				// Maybe this member alone is misconfigured: try the
				// others, and give up after the round.
				authErr = err
				m.forgetLeader(addr)
				continue
			}
			return err
		}
		if authErr != nil {
			return authErr
		}
		select {
		case <-ctx.Done():
			if last == nil {
				last = ErrNoMeta
			}
			return fmt.Errorf("%w (last error: %w)", ctx.Err(), last)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 200*time.Millisecond)
		if len(m.Members()) > 0 && last != nil && IsConnError(last) {
			// Every member failed at the connection level: maybe the
			// membership changed; ask the seeds again.
			_ = m.discover(ctx)
		}
	}
}

// forgetLeader stops preferring addr as the leader.
func (m *MetaCaller) forgetLeader(addr string) {
	m.mu.Lock()
	if m.leader == addr {
		m.leader = ""
	}
	m.mu.Unlock()
}

// attemptContext bounds one attempt within ctx.
func attemptContext(ctx context.Context, attempt time.Duration) (context.Context, context.CancelFunc) {
	if attempt <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, attempt)
}

func retryableMeta(err error) bool {
	if IsConnError(err) {
		return true
	}
	switch wire.CodeOf(err) {
	case wire.CodeNotLeader, wire.CodeUnavailable, wire.CodeClosed, wire.CodeWait, wire.CodeTimeout:
		return true
	}
	return false
}
