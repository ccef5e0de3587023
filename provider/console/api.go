package console

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/wxoidc/wxoidc/provider/admin"
)

// apiError is an error answer of the admin API (RFC 7591 §3.2.2 shaped,
// with the field it is about when the API names one).
type apiError struct {
	Status      int    `json:"-"`
	Code        string `json:"error"`
	Description string `json:"error_description"`
	Field       string `json:"field"`
}

func (e *apiError) Error() string {
	return fmt.Sprintf("admin API: %d %s: %s", e.Status, e.Code, e.Description)
}

// call sends one request to the admin API in process, as operator op, and
// decodes a 2xx JSON answer into out (when not nil). A 4xx answer is an
// *apiError; anything else is a plain error.
func (h *Handler) call(ctx context.Context, op operator, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(admin.WithOperator(ctx, op.name()), method, path, rd)
	if err != nil {
		return err
	}
	req.Host = "localhost" // the API's tokenless mode answers loopback names only
	req.RemoteAddr = "127.0.0.1:0"
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if h.cfg.AdminToken != "" {
		req.Header.Set("Authorization", "Bearer "+h.cfg.AdminToken)
	}
	rec := newRecorder()
	h.cfg.Admin.ServeHTTP(rec, req)
	switch {
	case rec.status >= 200 && rec.status < 300:
		if out != nil && rec.body.Len() > 0 {
			if err := json.Unmarshal(rec.body.Bytes(), out); err != nil {
				return fmt.Errorf("admin API %s %s: decode answer: %w", method, path, err)
			}
		}
		return nil
	case rec.status >= 400 && rec.status < 500:
		e := &apiError{Status: rec.status}
		if err := json.Unmarshal(rec.body.Bytes(), e); err != nil || e.Code == "" {
			e.Code = http.StatusText(rec.status)
		}
		return e
	}
	return fmt.Errorf("admin API %s %s: status %d", method, pathOnly(path), rec.status)
}

// pathOnly drops the query of a request path, for errors.
func pathOnly(p string) string {
	if u, err := url.Parse(p); err == nil {
		return u.Path
	}
	return "?"
}

// isStatus reports whether err is an admin API answer with status code.
func isStatus(err error, code int) bool {
	var ae *apiError
	return errors.As(err, &ae) && ae.Status == code
}

// recorder is the http.ResponseWriter of an in-process call.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func newRecorder() *recorder { return &recorder{header: http.Header{}} }

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return r.body.Write(b)
}

// handlerTransport is an http.RoundTripper that answers requests with a
// handler in process: the console reaches its own issuer this way, with no
// network, TLS or DNS in between.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	in := req.Clone(req.Context())
	in.RequestURI = req.URL.RequestURI()
	in.RemoteAddr = "127.0.0.1:0"
	if in.Body == nil {
		in.Body = http.NoBody
	}
	rec := newRecorder()
	t.h.ServeHTTP(rec, in)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return &http.Response{
		Status:        fmt.Sprintf("%d %s", rec.status, http.StatusText(rec.status)),
		StatusCode:    rec.status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        rec.header,
		Body:          io.NopCloser(bytes.NewReader(rec.body.Bytes())),
		ContentLength: int64(rec.body.Len()),
		Request:       req,
	}, nil
}
