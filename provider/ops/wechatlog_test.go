package ops

import (
	"errors"
	"fmt"
	"testing"

	"github.com/wxoidc/wxoidc/provider/wechat"
)

func TestWeChatLog_KeepsTheLastFailuresNewestFirst(t *testing.T) {
	l := &WeChatLog{Keep: 3}
	obs := l.Observe("wx1")
	obs("token", 0, nil)
	for i := range 5 {
		obs(fmt.Sprintf("api%d", i), 0, &wechat.APIError{Code: 40000 + i})
	}
	obs("token", 0, errors.Join(wechat.ErrUnavailable))
	h := l.Health("wx1")
	if h.Calls != 7 || h.Failed != 6 || len(h.Recent) != 3 {
		t.Fatalf("got %d calls, %d failed, %d recent; want 7, 6, 3", h.Calls, h.Failed, len(h.Recent))
	}
	want := []string{"token/unavailable", "api4/40004", "api3/40003"}
	for i, f := range h.Recent {
		if got := f.API + "/" + f.Errcode; got != want[i] {
			t.Errorf("recent[%d] = %s, want %s", i, got, want[i])
		}
	}
	if h := l.Health("wx2"); h.Calls != 0 || len(h.Recent) != 0 {
		t.Errorf("an app never called: %+v", h)
	}
}
