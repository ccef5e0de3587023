package wechat_test

import (
	"testing"

	"github.com/wxoidc/wxoidc/provider/wechat/wechattest"
)

// BenchmarkCode2Session measures one jscode2session round trip against the
// in-process simulator over loopback HTTP, so that login benchmarks can
// subtract WeChat's share. Codes are minted before the timer starts.
func BenchmarkCode2Session(b *testing.B) {
	e := newEnv(b, wechattest.Config{})
	c := e.client(mpID, mpSecret)
	c.HTTPClient = nil // the client's own transport, as in production
	codes := make([]string, b.N)
	for i := range codes {
		codes[i] = e.loginCode(b, mpID, "alice")
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := c.Code2Session(b.Context(), codes[i]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCode2Session_parallel is the same under concurrency.
func BenchmarkCode2Session_parallel(b *testing.B) {
	e := newEnv(b, wechattest.Config{})
	c := e.client(mpID, mpSecret)
	c.HTTPClient = nil // the client's own transport, as in production
	codes := make(chan string, b.N)
	for range b.N {
		codes <- e.loginCode(b, mpID, "alice")
	}
	close(codes)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Code2Session(b.Context(), <-codes); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
