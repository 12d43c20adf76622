package serve

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/opencontainers/go-digest"
)

// recorder remembers what a handler answered, for the access log.
type recorder struct {
	http.ResponseWriter
	status  int
	bytes   int64
	root    cid.Cid
	cid     cid.Cid
	digest  digest.Digest
	errCode string
	errMsg  string
	aborted bool
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(p)
	r.bytes += int64(n)
	return n, err
}

// ReadFrom passes the underlying writer's ReadFrom on, so that a file
// served with http.ServeContent goes straight to the connection.
func (r *recorder) ReadFrom(src io.Reader) (int64, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	if rf, ok := r.ResponseWriter.(io.ReaderFrom); ok {
		n, err := rf.ReadFrom(src)
		r.bytes += n
		return n, err
	}
	return io.Copy(writerOnly{r}, src)
}

type writerOnly struct{ io.Writer }

// Unwrap lets http.ResponseController reach the connection.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (s *Server) logRequest(rec *recorder, r *http.Request, start time.Time, panicked any) {
	status := rec.status
	if status == 0 {
		status = http.StatusOK
	}
	attrs := []slog.Attr{
		slog.String("method", r.Method),
		slog.String("path", r.URL.RequestURI()),
		slog.Int("status", status),
		slog.Int64("bytes", rec.bytes),
		slog.Duration("duration", time.Since(start)),
		slog.String("remote", r.RemoteAddr),
	}
	if rec.root.Defined() {
		attrs = append(attrs, slog.String("root", rec.root.String()))
	}
	if rec.cid.Defined() {
		attrs = append(attrs, slog.String("cid", rec.cid.String()))
	}
	if rec.digest != "" {
		attrs = append(attrs, slog.String("digest", rec.digest.String()))
	}
	if rec.errCode != "" {
		attrs = append(attrs, slog.String("code", rec.errCode))
	}
	if rec.errMsg != "" {
		attrs = append(attrs, slog.String("error", rec.errMsg))
	}
	if ua := r.UserAgent(); ua != "" {
		attrs = append(attrs, slog.String("user_agent", ua))
	}
	level := slog.LevelInfo
	switch {
	case rec.aborted || (panicked != nil && panicked != http.ErrAbortHandler):
		level = slog.LevelError
		attrs = append(attrs, slog.Bool("aborted", true))
	case status >= 500:
		level = slog.LevelWarn
	}
	s.log.LogAttrs(r.Context(), level, "request", attrs...)
}

// Serve answers requests on ln until ctx ends, then shuts down gracefully:
// it stops accepting, lets the requests in flight finish for up to
// Options.ShutdownGrace, and closes the rest. It returns nil after a
// shutdown caused by ctx.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute, // requests have no body
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
		// No WriteTimeout: a large layer to a slow client may take long.
		// Stalled IPFS reads are bounded by Options.ReadTimeout.
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.log.Info("shutting down", "grace", s.opts.ShutdownGrace)
	sctx, cancel := context.WithTimeout(context.Background(), s.opts.ShutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		s.log.Warn("requests still in flight after the grace period; closing them", "err", err)
		_ = srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
