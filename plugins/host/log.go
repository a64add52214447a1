package host

import (
	"bytes"
	"context"
	"io"
	"log"
	"log/slog"
	"sync"

	"github.com/hashicorp/go-hclog"
)

// levelTrace is slog's level for hclog's trace.
const levelTrace = slog.LevelDebug - 4

// hclogAdapter sends go-plugin's logs, and through them the plugin's own
// log lines, to the hub's slog logger. Every record carries plugin=NAME; the
// names go-plugin derives from the binary are dropped, since the built-ins
// all share one binary.
type hclogAdapter struct {
	l    *slog.Logger
	name string
}

func newHclogAdapter(l *slog.Logger) *hclogAdapter { return &hclogAdapter{l: l} }

func toSlog(level hclog.Level) slog.Level {
	switch level {
	case hclog.Trace:
		return levelTrace
	case hclog.Debug:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	}
	return slog.LevelInfo
}

// clean drops the "timestamp" go-plugin adds to each line it relays (the hub's
// own record time is the one that counts) and pairs up odd argument lists.
func clean(args []any) []any {
	out := make([]any, 0, len(args))
	for i := 0; i+1 < len(args); i += 2 {
		k, _ := args[i].(string)
		switch k {
		case "timestamp":
			continue // go-plugin's copy of the plugin's own time
		case "plugin":
			k = "path" // go-plugin names the binary so; plugin= is the config name
		}
		if k == "" {
			out = append(out, args[i], args[i+1])
			continue
		}
		out = append(out, k, args[i+1])
	}
	if len(args)%2 == 1 {
		out = append(out, "extra", args[len(args)-1])
	}
	return out
}

func (a *hclogAdapter) Log(level hclog.Level, msg string, args ...any) {
	if level == hclog.Off {
		return
	}
	a.l.Log(context.Background(), toSlog(level), msg, clean(args)...)
}
func (a *hclogAdapter) Trace(msg string, args ...any) { a.Log(hclog.Trace, msg, args...) }
func (a *hclogAdapter) Debug(msg string, args ...any) { a.Log(hclog.Debug, msg, args...) }
func (a *hclogAdapter) Info(msg string, args ...any)  { a.Log(hclog.Info, msg, args...) }
func (a *hclogAdapter) Warn(msg string, args ...any)  { a.Log(hclog.Warn, msg, args...) }
func (a *hclogAdapter) Error(msg string, args ...any) { a.Log(hclog.Error, msg, args...) }
func (a *hclogAdapter) enabled(l slog.Level) bool     { return a.l.Enabled(context.Background(), l) }
func (a *hclogAdapter) IsTrace() bool                 { return a.enabled(levelTrace) }
func (a *hclogAdapter) IsDebug() bool                 { return a.enabled(slog.LevelDebug) }
func (a *hclogAdapter) IsInfo() bool                  { return a.enabled(slog.LevelInfo) }
func (a *hclogAdapter) IsWarn() bool                  { return a.enabled(slog.LevelWarn) }
func (a *hclogAdapter) IsError() bool                 { return a.enabled(slog.LevelError) }
func (a *hclogAdapter) ImpliedArgs() []any            { return nil }
func (a *hclogAdapter) With(args ...any) hclog.Logger {
	return &hclogAdapter{l: a.l.With(clean(args)...), name: a.name}
}
func (a *hclogAdapter) Name() string                        { return a.name }
func (a *hclogAdapter) Named(name string) hclog.Logger      { return &hclogAdapter{l: a.l, name: name} }
func (a *hclogAdapter) ResetNamed(name string) hclog.Logger { return &hclogAdapter{l: a.l, name: name} }
func (a *hclogAdapter) SetLevel(hclog.Level)                {}
func (a *hclogAdapter) StandardWriter(*hclog.StandardLoggerOptions) io.Writer {
	return &lineWriter{l: a.l, level: slog.LevelInfo}
}
func (a *hclogAdapter) StandardLogger(o *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(a.StandardWriter(o), "", 0)
}

// GetLevel reports the most verbose level the hub's logger takes, so that
// go-plugin does not filter lines that the hub would log.
func (a *hclogAdapter) GetLevel() hclog.Level {
	switch {
	case a.IsTrace():
		return hclog.Trace
	case a.IsDebug():
		return hclog.Debug
	case a.IsInfo():
		return hclog.Info
	case a.IsWarn():
		return hclog.Warn
	}
	return hclog.Error
}

var _ hclog.Logger = (*hclogAdapter)(nil)

// lineWriter logs each line written to it: it receives what the plugin
// prints on its standard output and error after the handshake.
type lineWriter struct {
	mu    sync.Mutex
	l     *slog.Logger
	level slog.Level
	msg   string
	buf   []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		line := bytes.TrimRight(w.buf[:i], "\r")
		if len(line) > 0 {
			if w.msg != "" {
				w.l.Log(context.Background(), w.level, w.msg, "line", string(line))
			} else {
				w.l.Log(context.Background(), w.level, string(line))
			}
		}
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) > 64<<10 { // a runaway line without newline: log what we have
		w.l.Log(context.Background(), w.level, w.msg, "line", string(w.buf))
		w.buf = w.buf[:0]
	}
	return len(p), nil
}
