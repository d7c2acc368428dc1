package meta

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"

	"github.com/lni/dragonboat/v4/logger"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// dragonboat's logger registry is process-wide and can be configured only
// once, so its log lines go to the logger of the meta server started most
// recently in the process, at warning level and above. This is the one
// piece of process-wide state the store cannot avoid; it only affects where
// dragonboat's own lines are printed.
var dragonboatLogs struct {
	once   sync.Once
	target atomic.Pointer[slog.Logger]
}

func init() {
	// Importing dragonboat redirects the standard library logger into its
	// own; give it back to the program.
	log.SetOutput(os.Stderr)
	log.SetFlags(log.LstdFlags)
	log.SetPrefix("")
}

func routeDragonboatLogs(l *slog.Logger) {
	dragonboatLogs.target.Store(l)
	dragonboatLogs.once.Do(func() {
		defer func() {
			// The embedding program installed its own factory: keep it.
			_ = recover()
		}()
		logger.SetLoggerFactory(func(pkg string) logger.ILogger {
			d := &dbLogger{pkg: pkg}
			d.level.Store(int32(logger.WARNING))
			return d
		})
		for _, pkg := range []string{"raft", "rsm", "transport", "dragonboat", "logdb", "raftpb",
			"config", "settings", "registry", "tan", "pebblekv", "server", "gossip"} {
			// Elections and connection resets from peers that shut down
			// are routine; dragonboat reports them as warnings.
			switch pkg {
			case "transport":
				logger.GetLogger(pkg).SetLevel(logger.CRITICAL)
				continue
			case "raft", "rsm", "dragonboat", "config":
				logger.GetLogger(pkg).SetLevel(logger.ERROR)
				continue
			}
			logger.GetLogger(pkg).SetLevel(logger.WARNING)
		}
	})
}

type dbLogger struct {
	pkg   string
	level atomic.Int32
}

func (d *dbLogger) SetLevel(l logger.LogLevel) { d.level.Store(int32(l)) }

func (d *dbLogger) log(l logger.LogLevel, sl slog.Level, format string, args []any) {
	if int32(l) > d.level.Load() {
		return
	}
	t := dragonboatLogs.target.Load()
	if t == nil || !t.Enabled(context.Background(), sl) {
		return
	}
	t.Log(context.Background(), sl, fmt.Sprintf(format, args...), "component", "dragonboat/"+d.pkg)
}

func (d *dbLogger) Debugf(f string, a ...any)   { d.log(logger.DEBUG, slog.LevelDebug, f, a) }
func (d *dbLogger) Infof(f string, a ...any)    { d.log(logger.INFO, slog.LevelInfo, f, a) }
func (d *dbLogger) Warningf(f string, a ...any) { d.log(logger.WARNING, slog.LevelWarn, f, a) }
func (d *dbLogger) Errorf(f string, a ...any)   { d.log(logger.ERROR, slog.LevelError, f, a) }
func (d *dbLogger) Panicf(f string, a ...any) {
	d.log(logger.CRITICAL, slog.LevelError, f, a)
	panic(fmt.Sprintf(f, a...))
}

// tableName names a table in logs: its name in this member's map, or its
// ID when the map does not know it (any more).
func (s *Server) tableName(id placement.TableID) string {
	if t := s.Map().TableByID(id); t != nil {
		return t.Name
	}
	return fmt.Sprintf("#%d", id)
}
