package wire

import "math"

// ParseInt parses b as Redis parses an integer (string2ll): the value an
// OpIncr adds to and the integer arguments of RESP commands. b must be "0"
// or an optional '-' followed by a digit string without a leading zero, at
// most 20 bytes in all, with a value within int64. Nothing else is allowed:
// no '+', no "-0", no spaces, no underscores, no other base. In other words,
// b must be exactly the decimal form strconv.FormatInt gives the value.
// ParseInt does not allocate.
func ParseInt(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	if len(b) == 1 && b[0] == '0' {
		return 0, true
	}
	neg := b[0] == '-'
	d := b
	if neg {
		d = b[1:]
	}
	if len(d) == 0 || d[0] < '1' || d[0] > '9' {
		return 0, false
	}
	var u uint64
	for _, c := range d {
		if c < '0' || c > '9' {
			return 0, false
		}
		if u > (math.MaxUint64-9)/10 {
			return 0, false
		}
		u = u*10 + uint64(c-'0')
	}
	if neg {
		if u > 1<<63 {
			return 0, false
		}
		return -int64(u), true // -int64(1<<63) wraps to MinInt64, as wanted
	}
	if u > math.MaxInt64 {
		return 0, false
	}
	return int64(u), true
}
