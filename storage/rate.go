package storage

import "math"

// RateCost is the arithmetic of RateStore.TakeRate in whole microseconds:
// the cost of n requests (n emission intervals of 1/rate seconds) and the
// tolerance of a burst of burst requests. ok is false when n can never be
// admitted (n < 1, burst < n, or rate not positive).
func RateCost(n int, rate float64, burst int) (cost, tolerance int64, ok bool) {
	if n < 1 || burst < n || !(rate > 0) {
		return 0, 0, false
	}
	interval := 1e6 / rate
	// Rounded alike, so that n ≤ burst keeps cost ≤ tolerance.
	return int64(math.Round(float64(n) * interval)), int64(math.Round(float64(burst) * interval)), true
}
