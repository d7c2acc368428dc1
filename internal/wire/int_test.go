package wire

import (
	"math"
	"strconv"
	"testing"
)

func TestParseInt(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"1", 1, true},
		{"-1", -1, true},
		{"42", 42, true},
		{"-42", -42, true},
		{"1000", 1000, true},
		{"9223372036854775807", math.MaxInt64, true},
		{"-9223372036854775808", math.MinInt64, true},

		{"", 0, false},
		{"-", 0, false},
		{"--1", 0, false},
		{"00", 0, false},
		{"01", 0, false},
		{"-0", 0, false},
		{"-01", 0, false},
		{"+1", 0, false},
		{"+0", 0, false},
		{" 1", 0, false},
		{"1 ", 0, false},
		{"1-", 0, false},
		{"1.5", 0, false},
		{"1e3", 0, false},
		{"0x10", 0, false},
		{"1_0", 0, false},
		{"abc", 0, false},
		{"9223372036854775808", 0, false},
		{"-9223372036854775809", 0, false},
		{"18446744073709551615", 0, false},
		{"18446744073709551616", 0, false},
		{"99999999999999999999", 0, false},
		{"123456789012345678901", 0, false},
	}
	for _, tt := range tests {
		got, ok := ParseInt([]byte(tt.in))
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseInt(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestParseIntDoesNotAllocate(t *testing.T) {
	b := []byte("-9223372036854775808")
	if n := testing.AllocsPerRun(100, func() { ParseInt(b) }); n != 0 {
		t.Errorf("ParseInt allocates %v times per call, want 0", n)
	}
}

// FuzzParseInt checks ParseInt against strconv.ParseInt restricted to the
// Redis form: no '+', no leading zero, no "-0".
func FuzzParseInt(f *testing.F) {
	for _, s := range []string{"0", "-0", "+1", "01", "-1", "9223372036854775807", "-9223372036854775808",
		"9223372036854775808", "18446744073709551616", " 7", "1_0", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, ok := ParseInt(b)
		s := string(b)
		want, err := strconv.ParseInt(s, 10, 64)
		digits := s
		if len(digits) > 0 && digits[0] == '-' {
			digits = digits[1:]
		}
		wantOK := err == nil &&
			s[0] != '+' &&
			!(len(digits) > 1 && digits[0] == '0') &&
			s != "-0"
		if !wantOK {
			want = 0
		}
		if ok != wantOK || got != want {
			t.Fatalf("ParseInt(%q) = %d, %v; want %d, %v", b, got, ok, want, wantOK)
		}
		if ok && strconv.FormatInt(got, 10) != s {
			t.Fatalf("ParseInt(%q) = %d, which formats as %q", b, got, strconv.FormatInt(got, 10))
		}
	})
}
