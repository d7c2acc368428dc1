package main

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
)

// metaMembersValue is a pflag.Value for --meta-members: a comma-separated
// list of ID=host:port.
type metaMembersValue map[uint64]string

var _ pflag.Value = (*metaMembersValue)(nil)

func (m *metaMembersValue) String() string {
	ids := slices.Sorted(maps.Keys(*m))
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = fmt.Sprintf("%d=%s", id, (*m)[id])
	}
	return strings.Join(parts, ",")
}

func (m *metaMembersValue) Set(s string) error {
	out := make(map[uint64]string)
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		idStr, addr, ok := strings.Cut(item, "=")
		if !ok || addr == "" {
			return fmt.Errorf("%q is not ID=host:port", item)
		}
		id, err := strconv.ParseUint(strings.TrimSpace(idStr), 10, 64)
		if err != nil || id == 0 {
			return fmt.Errorf("%q: the ID must be a positive integer", item)
		}
		if _, dup := out[id]; dup {
			return fmt.Errorf("meta member %d is listed twice", id)
		}
		out[id] = strings.TrimSpace(addr)
	}
	*m = out
	return nil
}

func (m *metaMembersValue) Type() string { return "id=addr,..." }

// sizeValue is a pflag.Value for a byte count in parseByteSize's syntax:
// 1048576, 64MiB, 500k, 1.5GB.
type sizeValue int64

var _ pflag.Value = (*sizeValue)(nil)

var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
	{"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"B", 1},
}

func (s *sizeValue) String() string {
	v := int64(*s)
	for _, u := range sizeUnits[:3] {
		if v != 0 && v%u.mult == 0 {
			return fmt.Sprintf("%d%s", v/u.mult, u.suffix)
		}
	}
	return strconv.FormatInt(v, 10)
}

// cacheSizeValue is a sizeValue that also takes "off" (stored as -1) and
// "auto" (0, the default sizing).
type cacheSizeValue int64

var _ pflag.Value = (*cacheSizeValue)(nil)

func (c *cacheSizeValue) String() string {
	switch {
	case *c < 0:
		return "off"
	case *c == 0:
		return "auto"
	}
	v := sizeValue(*c)
	return v.String()
}

func (c *cacheSizeValue) Set(str string) error {
	switch strings.ToLower(strings.TrimSpace(str)) {
	case "off":
		*c = -1
		return nil
	case "auto":
		*c = 0
		return nil
	}
	var v sizeValue
	if err := v.Set(str); err != nil {
		return err
	}
	*c = cacheSizeValue(v)
	return nil
}

func (c *cacheSizeValue) Type() string { return "size|off|auto" }

func (s *sizeValue) Set(str string) error {
	n, err := parseByteSize(str)
	if err != nil {
		return err
	}
	*s = sizeValue(n)
	return nil
}

func (s *sizeValue) Type() string { return "bytes" }

// choiceValue is a pflag.Value that accepts one of a fixed set of words.
type choiceValue struct {
	value   string
	choices []string
}

var _ pflag.Value = (*choiceValue)(nil)

func newChoice(def string, choices ...string) *choiceValue {
	return &choiceValue{value: def, choices: choices}
}

func (c *choiceValue) String() string { return c.value }

func (c *choiceValue) Set(s string) error {
	s = strings.ToLower(strings.TrimSpace(s))
	if !slices.Contains(c.choices, s) {
		return fmt.Errorf("want one of %s", strings.Join(c.choices, ", "))
	}
	c.value = s
	return nil
}

func (c *choiceValue) Type() string { return strings.Join(c.choices, "|") }
