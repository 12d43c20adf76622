package rig

import (
	"io"
	"log"
	"net/http"
)

func nopLogger() *log.Logger { return log.New(io.Discard, "", 0) }

func copyBuf(w http.ResponseWriter, resp *http.Response) (int64, error) {
	buf := make([]byte, 256<<10)
	return io.CopyBuffer(w, resp.Body, buf)
}
