package sqlstore

import (
	"testing"
	"time"
)

// A timed janitor batch starts small, doubles while its statements take
// under half the budget, halves after one over it, and stays within its
// bounds; an untimed one is always its largest.
func TestJanitorBatch_Adapt(t *testing.T) {
	s := &Store{d: Dialect{JanitorStatement: 10 * time.Millisecond}}
	b := s.newJanitorBatch(8, 1000)
	want := func(size int) {
		t.Helper()
		if b.size != size {
			t.Fatalf("size %d, want %d", b.size, size)
		}
	}
	want(8)
	for _, size := range []int{16, 32, 64, 128, 256, 512, 1000, 1000} {
		b.adapt(time.Millisecond)
		want(size)
	}
	b.adapt(7 * time.Millisecond) // between half the budget and the budget
	want(1000)
	for _, size := range []int{500, 250, 125, 62, 31, 15, 8, 8} {
		b.adapt(time.Second)
		want(size)
	}

	untimed := (&Store{}).newJanitorBatch(8, 1000)
	untimed.adapt(time.Minute)
	if untimed.size != 1000 {
		t.Fatalf("untimed batch %d rows, want 1000", untimed.size)
	}
}
