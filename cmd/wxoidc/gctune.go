package main

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
)

// gcHeadroom is how much the heap may grow between two garbage
// collections at least. A provider's live heap is small (some 4 MB), and
// Go's default (GOGC=100: collect when the heap has doubled) then collects
// every 4 MB of allocation, about every 45 token requests: each collection
// marks the roots, the stacks and the live heap again, and that was some
// 18 % of a Mini Program grant's instructions. With the headroom the heap
// grows by 32 MB between collections while it is small; once the live
// heap passes 32 MB, GOGC=100 applies as usual.
const gcHeadroom = 32 << 20

// tuneGC keeps the garbage collector's target at least gcHeadroom above
// the live heap, by setting GOGC after each collection, unless the
// operator set GOGC (getenv) themselves: theirs wins. GOMEMLIMIT, when
// set, bounds the heap as usual. It is process-wide, so only main calls
// it.
func tuneGC(getenv func(string) string) {
	if getenv("GOGC") != "" {
		return
	}
	t := &gcTuner{sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}, percent: 100}
	t.arm()
}

// gcTuner adjusts GOGC from a finalizer that runs after every garbage
// collection. Only the finalizer goroutine touches it.
type gcTuner struct {
	sample  []metrics.Sample
	percent int // the GOGC set last
}

// gcSentinel is garbage as soon as it is made: its finalizer runs after
// the next collection, tunes, and arms a new one.
type gcSentinel struct{ t *gcTuner }

func (t *gcTuner) arm() {
	runtime.SetFinalizer(&gcSentinel{t}, func(s *gcSentinel) {
		s.t.tune()
		s.t.arm()
	})
}

func (t *gcTuner) tune() {
	metrics.Read(t.sample)
	if t.sample[0].Value.Kind() != metrics.KindUint64 {
		return
	}
	p := gcPercent(t.sample[0].Value.Uint64())
	// Only a change of a tenth or more: SetGCPercent takes the heap lock.
	if p*10 < t.percent*9 || p*10 > t.percent*11 {
		debug.SetGCPercent(p)
		t.percent = p
	}
}

// gcPercent is the GOGC that puts the next collection gcHeadroom above a
// live heap of live bytes, and never below Go's default of 100.
func gcPercent(live uint64) int {
	if live == 0 {
		live = 1 << 20
	}
	return max(100, int(gcHeadroom*100/live))
}
