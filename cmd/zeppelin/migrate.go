package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/zeppelin-kv/zeppelin/client"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// The commands that move replicas: migrate (one move), migrate cancel,
// migrations (the list) and rebalance. The node commands (node.go) drain
// nodes through the same batches and follow them the same way.

// migrationJSON describes one migration. Byte counts and rates are in
// bytes and bytes per second; the copy figures are 0 once the migration
// has finished.
type migrationJSON struct {
	ID uint64 `json:"id"`
	// Batch is the rebalance or drain that queued the migration (0 for a
	// single move).
	Batch     uint64 `json:"batch"`
	Table     string `json:"table"`
	Partition int    `json:"partition"`
	// From is empty when a lost replica is re-created, To when a surplus
	// replica is dropped.
	From  string `json:"from"`
	To    string `json:"to"`
	State string `json:"state"`
	// RateLimit is the copy bandwidth limit (0: none).
	RateLimit int64     `json:"rate_limit_bytes_per_sec"`
	Created   time.Time `json:"created"`
	Updated   time.Time `json:"updated"`
	// Attempts counts the failed handovers of a moving master.
	Attempts    int    `json:"attempts"`
	Error       string `json:"error,omitempty"`
	CopiedBytes int64  `json:"copied_bytes"`
	// TotalBytes is the master's estimate of the partition's size (0 when
	// unknown).
	TotalBytes int64  `json:"total_bytes"`
	LagRecords uint64 `json:"lag_records"`
	CopyRate   int64  `json:"copy_rate_bytes_per_sec"`
}

func migrationView(m client.Migration) migrationJSON {
	return migrationJSON{
		ID: m.ID, Batch: m.Batch, Table: m.Table, Partition: m.Partition,
		From: string(m.From), To: string(m.To), State: m.State.String(), RateLimit: m.RateBytes,
		Created: m.Created.UTC(), Updated: m.Updated.UTC(), Attempts: m.Attempts, Error: m.Error,
		CopiedBytes: m.CopiedBytes, TotalBytes: m.TotalBytes, LagRecords: m.LagRecords, CopyRate: m.CopyRate,
	}
}

func migrationViews(ms []client.Migration) []migrationJSON {
	out := make([]migrationJSON, len(ms))
	for i, m := range ms {
		out[i] = migrationView(m)
	}
	return out
}

// route is "from → to", a dash standing for the missing side.
func (m migrationJSON) route() string { return dash(m.From) + " → " + dash(m.To) }

// describe names the migration for a line of text: "migration 12 (t/3 n1 → n4)".
func (m migrationJSON) describe() string {
	return fmt.Sprintf("migration %d (%s/%d %s)", m.ID, m.Table, m.Partition, m.route())
}

// writeMigrations prints migrations as a table; now is the time ages are
// measured to.
func writeMigrations(w io.Writer, ms []migrationJSON, now time.Time) error {
	tw := newTab(w)
	fmt.Fprintln(tw, "ID\tBATCH\tTABLE/PART\tFROM → TO\tSTATE\tCOPIED\tLAG\tRATE\tAGE\tERROR")
	for _, m := range ms {
		batch, copied, lag, rate := "-", "-", "-", "-"
		if m.Batch != 0 {
			batch = strconv.FormatUint(m.Batch, 10)
		}
		if m.State == placement.MigrationCopying.String() || m.State == placement.MigrationHandover.String() {
			copied = copiedOf(m.CopiedBytes, m.TotalBytes)
			lag = strconv.FormatUint(m.LagRecords, 10)
			if m.CopyRate > 0 {
				rate = humanBytes(m.CopyRate) + "/s"
			}
		}
		fmt.Fprintf(tw, "%d\t%s\t%s/%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.ID, batch, m.Table, m.Partition, m.route(),
			m.State, copied, lag, rate, shortDuration(now.Sub(m.Created)), dash(m.Error))
	}
	return tw.Flush()
}

// copiedOf is "copied/total", or "copied" when the total is unknown.
func copiedOf(copied, total int64) string {
	if total > 0 {
		return humanBytes(copied) + "/" + humanBytes(total)
	}
	return humanBytes(copied)
}

// parseByteSize parses a byte count: a number, possibly with a fraction,
// and an optional unit, matched without regard to case: B; k, M, G, T
// (or KB, MB, GB, TB), which count by 1000; Ki, Mi, Gi, Ti (or KiB, MiB,
// GiB, TiB), which count by 1024. A trailing "/s" is allowed, so rates
// read naturally. "50MB" is 50000000, "1GiB" 1073741824, "500k" 500000.
func parseByteSize(s string) (int64, error) {
	bad := fmt.Errorf("%q is not a byte size such as 50MB, 1GiB, 500k or 1048576", s)
	str := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), "/s")
	i := strings.IndexFunc(str, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i < 0 {
		i = len(str)
	}
	num, unit := str[:i], strings.TrimSpace(str[i:])
	var mult int64
	switch strings.TrimSuffix(unit, "b") {
	case "":
		mult = 1
	case "k":
		mult = 1e3
	case "m":
		mult = 1e6
	case "g":
		mult = 1e9
	case "t":
		mult = 1e12
	case "ki":
		mult = 1 << 10
	case "mi":
		mult = 1 << 20
	case "gi":
		mult = 1 << 30
	case "ti":
		mult = 1 << 40
	default:
		return 0, bad
	}
	if num == "" {
		return 0, bad
	}
	const limit = 1 << 62
	if !strings.Contains(num, ".") {
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil || n > limit/mult {
			return 0, bad
		}
		return n * mult, nil
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f*float64(mult) > limit {
		return 0, bad
	}
	return int64(math.Round(f * float64(mult))), nil
}

// humanBytes prints n in binary units: "512 B", "1.5 KiB", "20.0 MiB".
func humanBytes(n int64) string {
	if n < 1024 && n > -1024 {
		return fmt.Sprintf("%d B", n)
	}
	units := []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	f, i := float64(n)/1024, 0
	for math.Abs(f) >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	return fmt.Sprintf("%.1f %s", f, units[i])
}

// shortDuration prints d for a column: "0.4s", "12s", "3m20s", "2h05m".
func shortDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < 10*time.Second:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}

// byteRate is a pflag.Value for a copy bandwidth in bytes per second,
// written as parseByteSize reads it; 0 leaves the cluster's default.
type byteRate int64

var _ pflag.Value = (*byteRate)(nil)

func (r *byteRate) String() string {
	if *r == 0 {
		return "0"
	}
	return humanBytes(int64(*r)) + "/s"
}

func (r *byteRate) Set(s string) error {
	n, err := parseByteSize(s)
	if err != nil {
		return err
	}
	*r = byteRate(n)
	return nil
}

func (r *byteRate) Type() string { return "bytes/s" }

// registerRate adds --rate to fs.
func registerRate(fs *pflag.FlagSet, r *byteRate) {
	fs.Var(r, "rate", "copy bandwidth limit of each move, in bytes per second: 50MB, 1GiB, 500k or a plain number (default: the cluster's)")
}

// waitOptions are the flags of the commands that can follow the moves
// they start.
type waitOptions struct {
	wait    bool
	timeout time.Duration
}

func (o *waitOptions) register(fs *pflag.FlagSet, what string) {
	fs.BoolVar(&o.wait, "wait", false, "follow "+what+" to its end, with progress on stderr, and exit 1 if a move failed or was cancelled")
	fs.DurationVar(&o.timeout, "wait-timeout", 0, "with --wait, stop waiting after this long; the moves go on (0: no limit; --timeout bounds each request)")
}

// context returns the context a wait runs under: it ends at --wait-timeout
// or at an interrupt, not at --timeout, which bounds each request of the
// wait instead.
func (o *waitOptions) context() (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	if o.timeout <= 0 {
		return ctx, stop
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	return ctx, func() { cancel(); stop() }
}

// waitEnded turns the error of a wait into one an operator can act on:
// when the wait itself ended (--wait-timeout or an interrupt) it says the
// moves go on and how to stop them; other errors are returned as they are.
func waitEnded(ctx context.Context, err error, what, stop string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("stopped waiting for %s at --wait-timeout; it goes on (%s stops it)", what, stop)
	case ctx.Err() != nil:
		return exitError{code: 130, err: fmt.Errorf("stopped waiting for %s; it goes on (%s stops it)", what, stop)}
	}
	return err
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progress shows how a batch of migrations (or one migration) advances,
// from the summaries of successive polls. On a terminal it redraws one
// line in place; elsewhere it prints plain lines: one whenever a migration
// changes state, and otherwise at most one a second while the copies move
// on.
type progress struct {
	w     io.Writer
	tty   bool
	label string
	now   func() time.Time
	start time.Time
	// lastAt, lastKey and lastText are when the last plain line was
	// printed, the states it showed and its text without the time.
	lastAt   time.Time
	lastKey  string
	lastText string
	// width is that of the line drawn on the terminal.
	width int
}

// newProgress returns a progress writing to w, as a terminal when tty;
// label names what it follows ("batch 7"); now is the clock.
func newProgress(w io.Writer, tty bool, label string, now func() time.Time) *progress {
	return &progress{w: w, tty: tty, label: label, now: now, start: now()}
}

// update shows summary p.
func (pr *progress) update(p client.BatchProgress) {
	now := pr.now()
	elapsed := shortDuration(now.Sub(pr.start))
	if pr.tty {
		line := pr.label + " " + progressBar(p, 20) + " " + progressText(p, true) + "  " + elapsed
		pad := max(pr.width-len(line), 0)
		fmt.Fprintf(pr.w, "\r%s%s", line, strings.Repeat(" ", pad))
		pr.width = len(line)
		return
	}
	key, text := progressKey(p), progressText(p, false)
	if key == pr.lastKey && (text == pr.lastText || now.Sub(pr.lastAt) < time.Second) {
		return
	}
	pr.lastAt, pr.lastKey, pr.lastText = now, key, text
	fmt.Fprintf(pr.w, "%s [%s] %s\n", pr.label, elapsed, text)
}

// end finishes the line drawn on a terminal.
func (pr *progress) end() {
	if pr.tty && pr.width > 0 {
		fmt.Fprintln(pr.w)
		pr.width = 0
	}
}

// progressKey identifies the states of p's migrations.
func progressKey(p client.BatchProgress) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d/%d/%d/%d", p.Total, p.Done, p.Failed, p.Cancelled)
	for _, m := range p.Running {
		fmt.Fprintf(&b, " %d:%v", m.ID, m.State)
	}
	return b.String()
}

// progressText sums p up: the moves done, the running ones by state, the
// bytes copied, the largest lag, the copy rate and the time left; short
// is the terse form of the terminal line.
func progressText(p client.BatchProgress, short bool) string {
	sep := "; "
	if short {
		sep = "  "
	}
	var parts []string
	moves := fmt.Sprintf("%d/%d moves done", p.Done, p.Total)
	if short {
		moves = fmt.Sprintf("%d/%d moves", p.Done, p.Total)
	}
	if p.Failed > 0 {
		moves += fmt.Sprintf(", %d failed", p.Failed)
	}
	if p.Cancelled > 0 {
		moves += fmt.Sprintf(", %d cancelled", p.Cancelled)
	}
	parts = append(parts, moves)
	if !short && len(p.Running) > 0 {
		var states []string
		for _, st := range []placement.MigrationState{placement.MigrationCopying, placement.MigrationHandover, placement.MigrationPending} {
			if n := countState(p.Running, st); n > 0 {
				states = append(states, fmt.Sprintf("%d %v", n, st))
			}
		}
		parts = append(parts, strings.Join(states, ", "))
	}
	if p.TotalBytes > 0 || p.CopiedBytes > 0 {
		c := copiedOf(p.CopiedBytes, p.TotalBytes)
		if !short {
			c = "copied " + strings.Replace(c, "/", " of ", 1)
		}
		parts = append(parts, c)
	}
	if slices.ContainsFunc(p.Running, func(m client.Migration) bool { return m.State != placement.MigrationPending }) {
		if short {
			parts = append(parts, fmt.Sprintf("lag %d", p.LagRecords))
		} else {
			parts = append(parts, fmt.Sprintf("lag %d records", p.LagRecords))
		}
	}
	if p.CopyRate > 0 {
		parts = append(parts, humanBytes(p.CopyRate)+"/s")
	}
	if eta := p.ETA(); eta > 0 {
		parts = append(parts, "ETA "+shortDuration(eta))
	}
	return strings.Join(parts, sep)
}

func countState(ms []client.Migration, st placement.MigrationState) int {
	n := 0
	for _, m := range ms {
		if m.State == st {
			n++
		}
	}
	return n
}

// progressBar draws the share of p done in width cells: the finished
// moves, and the running ones in proportion to their copies. It is full
// only when every move has ended.
func progressBar(p client.BatchProgress, width int) string {
	frac := 1.0
	if p.Total > 0 {
		done := float64(p.Done + p.Failed + p.Cancelled)
		for _, m := range p.Running {
			if m.TotalBytes > 0 {
				done += min(float64(m.CopiedBytes)/float64(m.TotalBytes), 1)
			}
		}
		frac = done / float64(p.Total)
	}
	cells := int(frac * float64(width))
	if !p.Finished() {
		cells = min(cells, width-1)
	}
	return "[" + strings.Repeat("#", cells) + strings.Repeat("-", width-cells) + "]"
}

// progressOfOne sums up a single migration the way WaitBatch sums up a
// batch.
func progressOfOne(m client.Migration) client.BatchProgress {
	p := client.BatchProgress{Total: 1}
	switch m.State {
	case placement.MigrationDone:
		p.Done = 1
	case placement.MigrationFailed:
		p.Failed = 1
	case placement.MigrationCancelled:
		p.Cancelled = 1
	default:
		p.Running = []client.Migration{m}
		p.CopiedBytes, p.TotalBytes, p.LagRecords, p.CopyRate = m.CopiedBytes, m.TotalBytes, m.LagRecords, m.CopyRate
	}
	return p
}

// followMigration polls migration id until it has finished, showing its
// progress on stderr, and returns it as it ended.
func followMigration(ctx context.Context, cl *client.Client, stderr io.Writer, id uint64) (client.Migration, error) {
	pr := newProgress(stderr, isTerminal(stderr), fmt.Sprintf("migration %d", id), time.Now)
	defer pr.end()
	wait := 50 * time.Millisecond
	for {
		ms, err := cl.Migrations(ctx, 0)
		if err != nil {
			return client.Migration{}, err
		}
		i := slices.IndexFunc(ms, func(m client.Migration) bool { return m.ID == id })
		if i < 0 {
			return client.Migration{}, fmt.Errorf("%w: no migration %d in the map", client.ErrInvalid, id)
		}
		pr.update(progressOfOne(ms[i]))
		if ms[i].State.Finished() {
			return ms[i], nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ms[i], ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, 500*time.Millisecond)
	}
}

// outcomeJSON is how a batch of moves ended, after --wait.
type outcomeJSON struct {
	Done      int   `json:"done"`
	Failed    int   `json:"failed"`
	Cancelled int   `json:"cancelled"`
	ElapsedMs int64 `json:"elapsed_ms"`
	// Failures are the moves that failed or were cancelled.
	Failures []migrationJSON `json:"failures,omitempty"`
}

// followBatch waits for batch to finish, showing its progress on stderr
// under label, and returns how it ended; an ended wait is reported by
// waitEnded.
func followBatch(wo *waitOptions, co *clientOptions, cl *client.Client, stderr io.Writer, label string, batch uint64) (*outcomeJSON, error) {
	ctx, cancel := wo.context()
	defer cancel()
	start := time.Now()
	pr := newProgress(stderr, isTerminal(stderr), label, time.Now)
	p, err := cl.WaitBatch(ctx, batch, pr.update)
	pr.end()
	if err != nil {
		return nil, waitEnded(ctx, err, label, fmt.Sprintf("zeppelin migrate cancel --batch %d", batch))
	}
	out := &outcomeJSON{Done: p.Done, Failed: p.Failed, Cancelled: p.Cancelled, ElapsedMs: time.Since(start).Milliseconds(), Failures: []migrationJSON{}}
	if p.Failed+p.Cancelled == 0 {
		return out, nil
	}
	lctx, lcancel := context.WithTimeout(context.Background(), co.timeout)
	defer lcancel()
	ms, err := cl.Migrations(lctx, batch)
	if err != nil {
		return nil, err
	}
	for _, m := range ms {
		if m.State == placement.MigrationFailed || m.State == placement.MigrationCancelled {
			out.Failures = append(out.Failures, migrationView(m))
		}
	}
	return out, nil
}

// err is the one-line error of a batch in which some move failed or was
// cancelled, or nil.
func (o *outcomeJSON) err(label string) error {
	if o == nil || o.Failed+o.Cancelled == 0 {
		return nil
	}
	return fmt.Errorf("%s: %d of %d moves did not complete (%d failed, %d cancelled)",
		label, o.Failed+o.Cancelled, o.Done+o.Failed+o.Cancelled, o.Failed, o.Cancelled)
}

// writeOutcome prints how a batch ended: a summary line, then a line per
// move that failed or was cancelled.
func writeOutcome(w io.Writer, label string, o *outcomeJSON) error {
	total := o.Done + o.Failed + o.Cancelled
	took := shortDuration(time.Duration(o.ElapsedMs) * time.Millisecond)
	if _, err := fmt.Fprintf(w, "%s finished in %s: %d of %d moves done\n", label, took, o.Done, total); err != nil {
		return err
	}
	for _, m := range o.Failures {
		if _, err := fmt.Fprintf(w, "%s %s: %s\n", m.describe(), m.State, dash(m.Error)); err != nil {
			return err
		}
	}
	return nil
}

// partitionArg parses a partition number argument.
func partitionArg(c *cobra.Command, arg string) (int, error) {
	p, err := strconv.Atoi(arg)
	if err != nil || p < 0 {
		return 0, usageError{cmd: c.CommandPath(), err: fmt.Errorf("PARTITION %q: want a partition number (0, 1, ...)", arg)}
	}
	return p, nil
}

func newMigrateCmd(stdout, stderr io.Writer) *cobra.Command {
	var (
		co    clientOptions
		wo    waitOptions
		force bool
		rate  byteRate
	)
	cmd := &cobra.Command{
		Use:   "migrate TABLE PARTITION FROM TO",
		Short: "Move one replica of a partition to another data node",
		Long: `Queue the move of the replica of TABLE's partition PARTITION (numbered
from 0) on data node FROM to data node TO, and print the migration's ID.

The move loses no write: TO copies the partition and follows its binlog,
then takes FROM's place in one step, after which FROM deletes its copy.
When FROM is the partition's master, TO takes the master role by a planned
handover: writes to the partition wait for the moment TO needs to catch up.
The meta leader runs a few moves at a time, each with its copy bandwidth
bounded by --rate; list them with "zeppelin migrations" and stop one with
"zeppelin migrate cancel ID" (it is rolled back).

With --wait the command follows the move to its end, with its progress on
stderr, prints how it ended and exits 1 if it failed or was cancelled. An
interrupt stops the waiting, not the move.

Refused, with nothing changed (exit 1): an unknown table or node, a
partition number out of range, a FROM that holds no replica of the
partition, a TO that already holds one or is down or being drained, a TO
in the failure domain of another replica (unless --force), and a partition
that is already moving. A bad command line exits 2.`,
		Example: `  zeppelin migrate users 3 n1 n4
  zeppelin migrate users 3 n1 n4 --rate 50MB --wait`,
		Args: usageArgs(func(c *cobra.Command, args []string) error {
			if len(args) != 4 {
				return fmt.Errorf("want TABLE PARTITION FROM TO (or the subcommand cancel), got %d argument(s)", len(args))
			}
			return nil
		}),
		RunE: func(c *cobra.Command, args []string) error {
			table, from, to := args[0], placement.NodeID(args[2]), placement.NodeID(args[3])
			part, err := partitionArg(c, args[1])
			if err != nil {
				return err
			}
			opts := []client.MigrateOption{client.CopyRate(int64(rate))}
			if force {
				opts = append(opts, client.Force())
			}
			what := fmt.Sprintf("migrate table %s partition %d from %s to %s", table, part, from, to)
			if !wo.wait {
				return runAdmin(&co, stdout, stderr, what, func(ctx context.Context, cl *client.Client) (map[string]uint64, error) {
					id, err := cl.Migrate(ctx, table, part, from, to, opts...)
					if err != nil {
						return nil, err
					}
					return map[string]uint64{"id": id}, nil
				}, func(w io.Writer, v map[string]uint64) error {
					_, err := fmt.Fprintf(w, "queued migration %d: table %s partition %d, %s → %s\n"+
						"follow it with \"zeppelin migrations\"; cancel it with \"zeppelin migrate cancel %d\"\n", v["id"], table, part, from, to, v["id"])
					return err
				})
			}
			var fail error
			err = runAdmin(&co, stdout, stderr, what, func(ctx context.Context, cl *client.Client) (migrationJSON, error) {
				id, err := cl.Migrate(ctx, table, part, from, to, opts...)
				if err != nil {
					return migrationJSON{}, err
				}
				fmt.Fprintf(stderr, "queued migration %d\n", id)
				wctx, cancel := wo.context()
				defer cancel()
				m, err := followMigration(wctx, cl, stderr, id)
				if err != nil {
					return migrationJSON{}, waitEnded(wctx, err, fmt.Sprintf("migration %d", id), fmt.Sprintf("zeppelin migrate cancel %d", id))
				}
				v := migrationView(m)
				if m.State != placement.MigrationDone {
					fail = fmt.Errorf("migration %d %s: %s", id, m.State, dash(m.Error))
				}
				return v, nil
			}, func(w io.Writer, v migrationJSON) error {
				took := shortDuration(v.Updated.Sub(v.Created))
				_, err := fmt.Fprintf(w, "%s %s after %s\n", v.describe(), v.State, took)
				return err
			})
			if err != nil {
				return err
			}
			return fail
		},
	}
	fs := cmd.Flags()
	fs.BoolVar(&force, "force", false, "move even onto a node in the failure domain of another replica of the partition")
	registerRate(fs, &rate)
	wo.register(fs, "the move")
	co.register(fs)
	cmd.AddCommand(newMigrateCancelCmd(stdout, stderr))
	return cmd
}

// cancelJSON says what "migrate cancel" stopped: a migration, or the
// unfinished migrations of a batch.
type cancelJSON struct {
	ID    uint64 `json:"id,omitempty"`
	Batch uint64 `json:"batch,omitempty"`
	// Cancelled counts the migrations cancelled.
	Cancelled int `json:"cancelled"`
}

func newMigrateCancelCmd(stdout, stderr io.Writer) *cobra.Command {
	var (
		co    clientOptions
		batch uint64
	)
	cmd := &cobra.Command{
		Use:   "cancel {ID | --batch N}",
		Short: "Stop a migration, or every unfinished migration of a batch, and roll it back",
		Long: `Stop migration ID, or with --batch every unfinished migration of batch N
(a rebalance or a drain), and roll it back: the target's copy is deleted
and the source keeps its replica. The command returns once that is
committed. A master handover that has already completed is not undone.

Refused (exit 1): an unknown migration or batch, and one that has already
finished. Give either ID or --batch (exit 2 otherwise).`,
		Example: `  zeppelin migrate cancel 12
  zeppelin migrate cancel --batch 7`,
		Args: usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(c *cobra.Command, args []string) error {
			if (len(args) == 1) == (batch != 0) {
				return usageError{cmd: c.CommandPath(), err: errors.New("give a migration ID or --batch N, not both or neither")}
			}
			if batch != 0 {
				return runAdmin(&co, stdout, stderr, fmt.Sprintf("cancel batch %d", batch), func(ctx context.Context, cl *client.Client) (cancelJSON, error) {
					ms, err := cl.Migrations(ctx, batch)
					if err != nil {
						return cancelJSON{}, err
					}
					if len(ms) == 0 {
						return cancelJSON{}, fmt.Errorf("%w: no batch %d in the map (finished long ago, or never started)", client.ErrInvalid, batch)
					}
					n := 0
					for _, m := range ms {
						if !m.State.Finished() {
							n++
						}
					}
					if n == 0 {
						return cancelJSON{}, fmt.Errorf("%w: every migration of batch %d has finished", client.ErrInvalid, batch)
					}
					if err := cl.CancelBatch(ctx, batch); err != nil {
						return cancelJSON{}, err
					}
					return cancelJSON{Batch: batch, Cancelled: n}, nil
				}, func(w io.Writer, v cancelJSON) error {
					_, err := fmt.Fprintf(w, "cancelled batch %d: its %d unfinished migration(s) are rolled back\n", v.Batch, v.Cancelled)
					return err
				})
			}
			id, err := strconv.ParseUint(args[0], 10, 64)
			if err != nil || id == 0 {
				return usageError{cmd: c.CommandPath(), err: fmt.Errorf("ID %q: want a migration ID (a positive integer)", args[0])}
			}
			return runAdmin(&co, stdout, stderr, fmt.Sprintf("cancel migration %d", id), func(ctx context.Context, cl *client.Client) (cancelJSON, error) {
				if err := cl.CancelMigration(ctx, id); err != nil {
					return cancelJSON{}, err
				}
				return cancelJSON{ID: id, Cancelled: 1}, nil
			}, func(w io.Writer, v cancelJSON) error {
				_, err := fmt.Fprintf(w, "cancelled migration %d: it is rolled back\n", v.ID)
				return err
			})
		},
	}
	cmd.Flags().Uint64Var(&batch, "batch", 0, "cancel every unfinished migration of batch `N`")
	co.register(cmd.Flags())
	return cmd
}

func newMigrationsCmd(stdout, stderr io.Writer) *cobra.Command {
	var (
		co    clientOptions
		batch uint64
		all   bool
	)
	cmd := &cobra.Command{
		Use:   "migrations",
		Short: "List the replica moves in progress (and, with --all, the recent finished ones)",
		Long: `List the replica moves the meta leader is running or has queued, oldest
first: each one's ID, batch (the rebalance or drain that queued it; "-" for
a single move), partition, source and target, state (pending, copying,
handover, then done, cancelled or failed), bytes copied of the partition's
estimated size, the target's lag behind the master in records, the copy
rate, its age and, for a move that failed or was cancelled, why.

--all adds the most recent finished moves; --batch N keeps the moves of
one batch.`,
		Example: `  zeppelin migrations
  zeppelin migrations --batch 7 --all --json`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(_ *cobra.Command, _ []string) error {
			return runAdmin(&co, stdout, stderr, "list migrations", func(ctx context.Context, cl *client.Client) ([]migrationJSON, error) {
				ms, err := cl.Migrations(ctx, batch)
				if err != nil {
					return nil, err
				}
				if !all {
					ms = slices.DeleteFunc(ms, func(m client.Migration) bool { return m.State.Finished() })
				}
				return migrationViews(ms), nil
			}, func(w io.Writer, ms []migrationJSON) error {
				if len(ms) == 0 {
					msg := "no migrations"
					if !all {
						msg = "no migrations running (--all lists the recent finished ones too)"
					}
					_, err := fmt.Fprintln(w, msg)
					return err
				}
				return writeMigrations(w, ms, time.Now())
			})
		},
	}
	fs := cmd.Flags()
	fs.Uint64Var(&batch, "batch", 0, "list only the migrations of batch `N`")
	fs.BoolVar(&all, "all", false, "list the most recent finished migrations too")
	co.register(fs)
	return cmd
}

// planJSON is a rebalance plan, made without changing anything.
type planJSON struct {
	Epoch uint64 `json:"epoch"`
	// ReplicaMoves counts the replicas the plan copies, MinReplicaMoves
	// the fewest any balanced placement needs; MasterChanges the master
	// roles it moves.
	ReplicaMoves    int            `json:"replica_moves"`
	MinReplicaMoves int            `json:"min_replica_moves"`
	MasterChanges   int            `json:"master_changes"`
	Moves           []planMoveJSON `json:"moves"`
	Warnings        []string       `json:"warnings"`
	// Summary is the planner's report for people: counts, imbalance and
	// each node's replicas and masters before and after.
	Summary string `json:"-"`
}

// planMoveJSON is one step of a plan: kind add (a replica on To), remove
// (the replica on From) or master (the role from From to To).
type planMoveJSON struct {
	Table     string `json:"table"`
	Partition int    `json:"partition"`
	Kind      string `json:"kind"`
	From      string `json:"from,omitempty"`
	To        string `json:"to,omitempty"`
}

func planView(p *client.Plan) planJSON {
	v := planJSON{Epoch: uint64(p.Epoch), ReplicaMoves: p.ReplicaMoves, MinReplicaMoves: p.Minimum, MasterChanges: p.MasterChanges,
		Moves: []planMoveJSON{}, Warnings: append([]string{}, p.Warnings...), Summary: p.Summary}
	for _, mv := range p.Moves {
		v.Moves = append(v.Moves, planMoveJSON{Table: mv.Table, Partition: int(mv.Partition), Kind: mv.Kind, From: string(mv.From), To: string(mv.To)})
	}
	return v
}

// writePlan prints a plan: the planner's summary, the moves and the
// warnings.
func writePlan(w io.Writer, p planJSON) error {
	if p.Summary != "" {
		fmt.Fprintf(w, "%s\n\n", p.Summary)
	}
	if len(p.Moves) == 0 {
		fmt.Fprintln(w, "nothing to move: replicas and masters are balanced")
	} else {
		tw := newTab(w)
		fmt.Fprintln(tw, "TABLE/PART\tKIND\tFROM\tTO")
		for _, mv := range p.Moves {
			fmt.Fprintf(tw, "%s/%d\t%s\t%s\t%s\n", mv.Table, mv.Partition, mv.Kind, dash(mv.From), dash(mv.To))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	for _, warn := range p.Warnings {
		fmt.Fprintf(w, "warning: %s\n", warn)
	}
	_, err := fmt.Fprintln(w, "dry run: nothing changed (\"zeppelin rebalance\" without --dry-run makes the moves)")
	return err
}

// rebalanceJSON says what a rebalance started and, after --wait, how it
// ended.
type rebalanceJSON struct {
	// Batch names the migrations queued (0 when no replica needed to
	// move); Migrations counts them; Switchovers counts the master roles
	// moved at once (when no replica needed to move, or --masters-only).
	Batch       uint64       `json:"batch"`
	Migrations  int          `json:"migrations"`
	Switchovers int          `json:"switchovers"`
	Outcome     *outcomeJSON `json:"outcome,omitempty"`
}

func newRebalanceCmd(stdout, stderr io.Writer) *cobra.Command {
	var (
		co          clientOptions
		wo          waitOptions
		table       string
		mastersOnly bool
		dryRun      bool
		rate        byteRate
	)
	cmd := &cobra.Command{
		Use:   "rebalance",
		Short: "Balance replicas and masters across the data nodes by their weights",
		Long: `Balance the cluster: move replicas so that every data node holds a share
in proportion to its weight (a draining node's replicas move away, a new
node gets its share), keeping each partition's replicas in distinct
failure domains, then spread the masters evenly.

The replica moves run as one batch of migrations, a few at a time with
their copy bandwidth bounded by --rate, and lose no write; once the batch
has finished the masters are balanced again. When no replica needs to move,
or with --masters-only, the masters are balanced at once by planned
switchovers. The command prints the batch and the number of moves; follow
the batch with --wait or "zeppelin migrations --batch N", stop it with
"zeppelin migrate cancel --batch N".

--dry-run prints the plan (each node's replicas and masters before and
after, and every move) and changes nothing.

Refused (exit 1): an unknown --table, and a placement the data nodes
cannot provide (fewer nodes able to hold replicas than a table's
replication). With --wait, exit 1 if a move failed or was cancelled.`,
		Example: `  zeppelin rebalance --dry-run
  zeppelin rebalance --table users --rate 50MB --wait`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			if dryRun {
				if wo.wait {
					return usageError{cmd: c.CommandPath(), err: errors.New("--dry-run changes nothing: there is nothing to --wait for")}
				}
				return runAdmin(&co, stdout, stderr, "plan rebalance", func(ctx context.Context, cl *client.Client) (planJSON, error) {
					p, err := cl.PlanRebalance(ctx, table, mastersOnly)
					if err != nil {
						return planJSON{}, err
					}
					return planView(p), nil
				}, writePlan)
			}
			var outcome *outcomeJSON
			label := "rebalance batch"
			err := runAdmin(&co, stdout, stderr, "rebalance", func(ctx context.Context, cl *client.Client) (rebalanceJSON, error) {
				res, err := cl.Rebalance(ctx, client.RebalanceOptions{Table: table, MastersOnly: mastersOnly, CopyRate: int64(rate)})
				if err != nil {
					return rebalanceJSON{}, err
				}
				v := rebalanceJSON{Batch: res.Batch, Migrations: res.Migrations, Switchovers: res.Switchovers}
				if !wo.wait || res.Batch == 0 {
					return v, nil
				}
				fmt.Fprintf(stderr, "rebalance batch %d: %d moves queued\n", res.Batch, res.Migrations)
				label = fmt.Sprintf("rebalance batch %d", res.Batch)
				v.Outcome, err = followBatch(&wo, &co, cl, stderr, label, res.Batch)
				outcome = v.Outcome
				return v, err
			}, func(w io.Writer, v rebalanceJSON) error {
				switch {
				case v.Batch == 0 && v.Switchovers == 0:
					_, err := fmt.Fprintln(w, "nothing to move: replicas and masters are balanced")
					return err
				case v.Batch == 0:
					_, err := fmt.Fprintf(w, "no replica needs to move; %d master role(s) moved by planned switchover\n", v.Switchovers)
					return err
				case v.Outcome != nil:
					return writeOutcome(w, label, v.Outcome)
				}
				_, err := fmt.Fprintf(w, "rebalance batch %d: %d replica moves queued; masters are balanced again once they finish\n"+
					"follow it with \"zeppelin migrations --batch %d\"; stop it with \"zeppelin migrate cancel --batch %d\"\n",
					v.Batch, v.Migrations, v.Batch, v.Batch)
				return err
			})
			if err != nil {
				return err
			}
			return outcome.err(label)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&table, "table", "", "balance only this `table` (default: every table)")
	fs.BoolVar(&mastersOnly, "masters-only", false, "move master roles only, by planned switchovers (no copy)")
	fs.BoolVar(&dryRun, "dry-run", false, "print the plan and change nothing")
	registerRate(fs, &rate)
	wo.register(fs, "the batch")
	co.register(fs)
	return cmd
}
