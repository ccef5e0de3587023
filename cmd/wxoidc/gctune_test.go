package main

import "testing"

func TestGCPercent(t *testing.T) {
	cases := []struct {
		name string
		live uint64
		want int
	}{
		{"unknown", 0, 3200},
		{"small heap", 4 << 20, 800},
		{"at the headroom", 32 << 20, 100},
		{"large heap keeps Go's default", 1 << 30, 100},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := gcPercent(tc.live); got != tc.want {
				t.Errorf("gcPercent(%d) = %d, want %d", tc.live, got, tc.want)
			}
		})
	}
}
