package provider_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// benchClient is a keep-alive client with enough idle connections for the
// parallel benchmark goroutines.
func benchClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 256
	tr.MaxIdleConnsPerHost = 256
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// runHTTPBench drives one request shape in parallel over loopback and
// reports requests per second. Every response must have status want.
func runHTTPBench(b *testing.B, want int, newReq func() *http.Request) {
	c := benchClient()
	b.SetParallelism(8) // 16 client goroutines on this 2-core machine
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := c.Do(newReq())
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != want {
				b.Errorf("status %d, want %d", resp.StatusCode, want)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

func formRequest(target, user, pass string, form url.Values) func() *http.Request {
	body := form.Encode()
	return func() *http.Request {
		req, _ := http.NewRequest(http.MethodPost, target, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		return req
	}
}

func BenchmarkClientCredentials(b *testing.B) {
	e := newPlainEnv(b)
	runHTTPBench(b, http.StatusOK, formRequest(e.issuer+"/oauth2/token", serviceClient, serviceSecret,
		url.Values{"grant_type": {"client_credentials"}, "scope": {"orders.read"}}))
}

func BenchmarkIntrospection(b *testing.B) {
	e := newPlainEnv(b)
	_, body := e.postForm("/oauth2/token", serviceClient, serviceSecret, url.Values{"grant_type": {"client_credentials"}, "scope": {"orders.read"}})
	token, _ := body["access_token"].(string)
	if token == "" {
		b.Fatalf("no token: %v", body)
	}
	runHTTPBench(b, http.StatusOK, formRequest(e.issuer+"/oauth2/introspect", serviceClient, serviceSecret,
		url.Values{"token": {token}}))
}

func BenchmarkDiscovery(b *testing.B) {
	e := newPlainEnv(b)
	runHTTPBench(b, http.StatusOK, func() *http.Request {
		req, _ := http.NewRequest(http.MethodGet, e.issuer+"/.well-known/openid-configuration", nil)
		return req
	})
}

func BenchmarkJWKS(b *testing.B) {
	e := newPlainEnv(b)
	runHTTPBench(b, http.StatusOK, func() *http.Request {
		req, _ := http.NewRequest(http.MethodGet, e.issuer+"/.well-known/jwks.json", nil)
		return req
	})
}
