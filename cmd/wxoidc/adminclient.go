package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/wxoidc/wxoidc/provider/admin"
)

// adminClient calls the admin API: a remote one (wxoidc clients --admin
// URL) or one in this process (newLocalAdmin).
type adminClient struct {
	base  string // without a trailing slash
	token string // bearer token; "" sends none
	hc    *http.Client
}

func newRemoteAdmin(base, token string) *adminClient {
	return &adminClient{base: strings.TrimRight(base, "/"), token: token, hc: &http.Client{Timeout: 30 * time.Second}}
}

// newLocalAdmin serves the admin API in process: requests go straight to
// the handler, over no network.
func newLocalAdmin(cfg admin.Config) (*adminClient, error) {
	h, err := admin.New(cfg)
	if err != nil {
		return nil, err
	}
	return &adminClient{base: "http://127.0.0.1", hc: &http.Client{Transport: handlerTransport{h}}}, nil
}

// adminError is an error answer of the admin API.
type adminError struct {
	Status      int    `json:"-"`
	Code        string `json:"error"`
	Description string `json:"error_description"`
}

func (e *adminError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("admin API: HTTP %d", e.Status)
	}
	return e.Code + ": " + e.Description
}

// call sends in (as JSON, if not nil) and decodes a 2xx answer into out
// (if not nil); other answers become an *adminError.
func (a *adminClient) call(ctx context.Context, method, path string, in, out any) error {
	return a.callType(ctx, method, path, "application/json", in, out)
}

// callType is call with the given Content-Type for in.
func (a *adminClient) callType(ctx context.Context, method, path, contentType string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return fmt.Errorf("admin API at %s: %w (is the provider's admin listener there? check --admin URL, or drop --admin to work on the storage of --config FILE)", a.base, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("admin API: %w", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		ae := &adminError{Status: resp.StatusCode}
		json.Unmarshal(b, ae)
		return ae
	}
	if out == nil || len(b) == 0 {
		return nil
	}
	return json.Unmarshal(b, out)
}

// handlerTransport is an http.RoundTripper that serves requests with a
// handler in process.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	if r.Body == nil {
		r.Body = http.NoBody
	}
	if r.Host == "" {
		r.Host = r.URL.Host
	}
	r.RemoteAddr = "127.0.0.1:0"
	r.RequestURI = r.URL.RequestURI()
	w := &memResponse{header: http.Header{}}
	t.h.ServeHTTP(w, r)
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return &http.Response{
		Status:        http.StatusText(w.status),
		StatusCode:    w.status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        w.header,
		Body:          io.NopCloser(&w.body),
		ContentLength: int64(w.body.Len()),
		Request:       req,
	}, nil
}

// memResponse is an http.ResponseWriter into memory.
type memResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *memResponse) Header() http.Header { return w.header }

func (w *memResponse) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *memResponse) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(b)
}
