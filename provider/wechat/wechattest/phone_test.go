package wechattest

import "testing"

func TestSplitPhone(t *testing.T) {
	mainland := []string{
		"13800138000", "138 0013 8000", "138-0013-8000", "+8613800138000", "+86 138 0013 8000",
		"+86-138-0013-8000", "(+86) 138 0013 8000", "008613800138000", "8613800138000", " 13800138000 ",
	}
	for _, in := range mainland {
		cc, pure, err := splitPhone(in)
		if err != nil || cc != "86" || pure != "13800138000" {
			t.Errorf("splitPhone(%q) = %q, %q, %v; want 86, 13800138000", in, cc, pure, err)
		}
	}
	foreign := []struct{ in, cc, pure string }{
		{"+1-4155550100", "1", "4155550100"},
		{"+1 415 555 0100", "1", "4155550100"},
		{"+44 20-7183-8750", "44", "2071838750"},
	}
	for _, tc := range foreign {
		cc, pure, err := splitPhone(tc.in)
		if err != nil || cc != tc.cc || pure != tc.pure {
			t.Errorf("splitPhone(%q) = %q, %q, %v; want %s, %s", tc.in, cc, pure, err, tc.cc, tc.pure)
		}
	}
	for _, in := range []string{"", "12345", "4155550100", "+14155550100", "1380013800", "138001380001", "12800138000", "86138001380", "phone", "+86 12345"} {
		if cc, pure, err := splitPhone(in); err == nil {
			t.Errorf("splitPhone(%q) = %q, %q; want it refused as ambiguous", in, cc, pure)
		}
	}
}
