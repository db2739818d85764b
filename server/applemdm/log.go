package applemdm

import (
	"context"
	"log/slog"

	nanolog "github.com/micromdm/nanolib/log"
)

// nanoLogger speaks nanolib's key-value logger over slog. nanomdm puts
// its message under "msg"; the rest are attributes.
type nanoLogger struct{ l *slog.Logger }

func (n nanoLogger) Info(kv ...any)  { n.log(slog.LevelInfo, kv) }
func (n nanoLogger) Debug(kv ...any) { n.log(slog.LevelDebug, kv) }

func (n nanoLogger) With(kv ...any) nanolog.Logger { return nanoLogger{n.l.With(kv...)} }

func (n nanoLogger) log(level slog.Level, kv []any) {
	msg := "nanomdm"
	rest := make([]any, 0, len(kv))
	for i := 0; i < len(kv); i += 2 {
		if k, ok := kv[i].(string); ok && k == "msg" && i+1 < len(kv) {
			if s, ok := kv[i+1].(string); ok {
				msg = s
				continue
			}
		}
		rest = append(rest, kv[i:min(i+2, len(kv))]...)
	}
	n.l.Log(context.Background(), level, msg, rest...)
}
