package grpcserver

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/validator"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// chain builds the interceptor chain every TradSys server uses, outermost
// first. Order matters:
//
//  1. logging: outermost, so it records the final code of every call,
//     including panics turned into INTERNAL and validation failures.
//  2. metrics: counts and times every call the same way logging sees it.
//  3. UTF-8: a request whose string fields are not UTF-8 answers
//     INVALID_ARGUMENT naming the field (see utf8.go: grpc would say
//     INTERNAL); for streams, every message received.
//  4. recovery: turns a panic anywhere below into INTERNAL instead of a
//     crashed process ("no input may crash a process").
//  5. validation: rejects bad requests with INVALID_ARGUMENT naming the field
//     before any service logic (or forwarding, or lazy activation) runs.
//  6. the service's own interceptors (leader forwarding, the lazy gate):
//     innermost, so they only ever see valid requests.
func chain(log *zap.Logger, m *rpcMetrics, extraUnary []grpc.UnaryServerInterceptor, extraStream []grpc.StreamServerInterceptor) []grpc.ServerOption {
	logOpts := []logging.Option{
		logging.WithLogOnEvents(logging.FinishCall),
		logging.WithLevels(codeToLevel),
	}
	recOpts := []recovery.Option{recovery.WithRecoveryHandlerContext(func(ctx context.Context, p any) error {
		log.Error("panic in handler", zap.Any("panic", p), zap.ByteString("stack", debug.Stack()))
		return status.Errorf(codes.Internal, "internal error: %v", p)
	})}
	unary := append([]grpc.UnaryServerInterceptor{
		logging.UnaryServerInterceptor(zapAdapter(log), logOpts...),
		m.unary,
		utf8Unary,
		recovery.UnaryServerInterceptor(recOpts...),
		validator.UnaryServerInterceptor(),
	}, extraUnary...)
	stream := append([]grpc.StreamServerInterceptor{
		logging.StreamServerInterceptor(zapAdapter(log), logOpts...),
		m.stream,
		utf8Stream,
		recovery.StreamServerInterceptor(recOpts...),
		validator.StreamServerInterceptor(),
	}, extraStream...)
	return []grpc.ServerOption{grpc.ChainUnaryInterceptor(unary...), grpc.ChainStreamInterceptor(stream...)}
}

// codeToLevel keeps successful calls at debug so a busy server does not log
// a line per call at the default level.
func codeToLevel(c codes.Code) logging.Level {
	switch c {
	case codes.OK, codes.Canceled:
		return logging.LevelDebug
	case codes.Unknown, codes.Internal, codes.DataLoss, codes.Unimplemented:
		return logging.LevelError
	default:
		return logging.LevelInfo
	}
}

func zapAdapter(l *zap.Logger) logging.Logger {
	l = l.WithOptions(zap.WithCaller(false)) // the caller would be the middleware
	return logging.LoggerFunc(func(_ context.Context, lvl logging.Level, msg string, kv ...any) {
		zl := zapcore.DebugLevel
		switch lvl {
		case logging.LevelInfo:
			zl = zapcore.InfoLevel
		case logging.LevelWarn:
			zl = zapcore.WarnLevel
		case logging.LevelError:
			zl = zapcore.ErrorLevel
		}
		ce := l.Check(zl, msg)
		if ce == nil {
			return // disabled level: skip building fields
		}
		fields := make([]zap.Field, 0, len(kv)/2)
		for i := 0; i+1 < len(kv); i += 2 {
			fields = append(fields, zap.Any(fmt.Sprint(kv[i]), kv[i+1]))
		}
		ce.Write(fields...)
	})
}

// rpcMetrics are per-method call counts and latencies.
type rpcMetrics struct {
	handled *prometheus.CounterVec
	seconds *prometheus.HistogramVec
}

func newRPCMetrics(reg prometheus.Registerer) *rpcMetrics {
	m := &rpcMetrics{
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tradsys_grpc_server_handled_total", Help: "RPCs completed, by method and code.",
		}, []string{"method", "code"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "tradsys_grpc_server_handling_seconds", Help: "RPC latency, by method.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}, []string{"method"}),
	}
	reg.MustRegister(m.handled, m.seconds)
	return m
}

func (m *rpcMetrics) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := h(ctx, req)
	m.observe(info.FullMethod, start, err)
	return resp, err
}

func (m *rpcMetrics) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	start := time.Now()
	err := h(srv, ss)
	m.observe(info.FullMethod, start, err)
	return err
}

func (m *rpcMetrics) observe(method string, start time.Time, err error) {
	m.handled.WithLabelValues(method, status.Code(err).String()).Inc()
	m.seconds.WithLabelValues(method).Observe(time.Since(start).Seconds())
}
