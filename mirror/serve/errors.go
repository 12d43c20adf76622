package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"strconv"
)

// Error codes of the OCI distribution spec (and CNCF distribution's
// UNKNOWN and UNAVAILABLE), as they appear in error bodies.
const (
	CodeBlobUnknown     = "BLOB_UNKNOWN"
	CodeDigestInvalid   = "DIGEST_INVALID"
	CodeManifestInvalid = "MANIFEST_INVALID"
	CodeManifestUnknown = "MANIFEST_UNKNOWN"
	CodeNameInvalid     = "NAME_INVALID"
	CodeNameUnknown     = "NAME_UNKNOWN"
	CodeRangeInvalid    = "RANGE_INVALID"
	CodeDenied          = "DENIED"
	CodeUnsupported     = "UNSUPPORTED"
	CodeUnavailable     = "UNAVAILABLE"
	CodeUnknown         = "UNKNOWN"
)

// Sentinel errors of the package.
var (
	// ErrTreeTooLarge: an image's indexes and manifests together are over
	// Options.MaxTreeBytes.
	ErrTreeTooLarge = errors.New("image tree too large")
	// errBadTree: an image's tree cannot be served as it is (an
	// impossible size, a document that cannot be rewritten).
	errBadTree = errors.New("invalid image")
)

// panicError is a panic recovered in a goroutine serve started (a shared
// resolve, read or check), handed to every waiter as an error.
type panicError struct {
	value any
	stack []byte
}

func (e *panicError) Error() string { return fmt.Sprintf("internal error: panic: %v", e.value) }

// protect runs fn, turning a panic into a *panicError.
func protect[V any](ctx context.Context, fn func(context.Context) (V, error)) (v V, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &panicError{value: p, stack: debug.Stack()}
		}
	}()
	return fn(ctx)
}

// regError is one error answer: an HTTP status and a spec error code.
type regError struct {
	status  int
	code    string
	message string
	detail  any
}

func (e *regError) Error() string { return e.code + ": " + e.message }

func newError(status int, code, format string, args ...any) *regError {
	return &regError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

// errorBody is the JSON body of an error answer.
type errorBody struct {
	Errors []errorEntry `json:"errors"`
}

type errorEntry struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Detail  any    `json:"detail,omitempty"`
}

// writeError answers e as the spec's error JSON (no body for HEAD).
func writeError(w http.ResponseWriter, r *http.Request, e *regError) {
	body, _ := json.Marshal(errorBody{Errors: []errorEntry{{Code: e.code, Message: e.message, Detail: e.detail}}})
	h := w.Header()
	for _, k := range []string{"Docker-Content-Digest", "ETag", "Accept-Ranges", "Cache-Control"} {
		h.Del(k)
	}
	if e.status != http.StatusRequestedRangeNotSatisfiable {
		h.Del("Content-Range")
	}
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("X-Content-Type-Options", "nosniff")
	if e.status == http.StatusMethodNotAllowed {
		h.Set("Allow", "GET, HEAD")
	}
	if rec, ok := w.(*recorder); ok {
		rec.errCode = e.code
		rec.errMsg = e.message
	}
	w.WriteHeader(e.status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}
