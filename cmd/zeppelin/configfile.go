package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
)

// applyConfigFile reads a JSON object whose keys are the long names of the
// command's flags and sets every flag the command line did not set. Values
// may be strings, numbers or booleans; a list (for --join, --roles) is a
// JSON array or a comma-separated string; --meta-members may also be an
// object {"1": "host:port", ...}. Unknown keys are errors.
func applyConfigFile(fs *pflag.FlagSet, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var settings map[string]any
	if err := dec.Decode(&settings); err != nil {
		return fmt.Errorf("config file %s: not a JSON object: %w", path, jsonErrorDetail(b, err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("config file %s: unexpected data after the JSON object", path)
	}
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(settings)) {
		f := fs.Lookup(name)
		if f == nil || name == "config" || name == "help" {
			errs = append(errs, fmt.Errorf("config file %s: unknown setting %q (settings are the long flag names of 'zeppelin serve')", path, name))
			continue
		}
		if f.Changed {
			continue // the command line wins
		}
		s, err := settingString(settings[name])
		if err != nil {
			errs = append(errs, fmt.Errorf("config file %s: %q: %w", path, name, err))
			continue
		}
		if err := fs.Set(name, s); err != nil {
			errs = append(errs, fmt.Errorf("config file %s: invalid value %q for %q: %w", path, s, name, err))
		}
	}
	return errors.Join(errs...)
}

// settingString turns one JSON value into the text a flag parses.
func settingString(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case json.Number:
		return v.String(), nil
	case bool:
		return strconv.FormatBool(v), nil
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			s, err := settingString(e)
			if err != nil {
				return "", err
			}
			if strings.Contains(s, ",") {
				return "", fmt.Errorf("list element %q contains a comma", s)
			}
			parts[i] = s
		}
		return strings.Join(parts, ","), nil
	case map[string]any:
		parts := make([]string, 0, len(v))
		for _, k := range slices.Sorted(maps.Keys(v)) {
			s, err := settingString(v[k])
			if err != nil {
				return "", err
			}
			parts = append(parts, k+"="+s)
		}
		return strings.Join(parts, ","), nil
	case nil:
		return "", errors.New("null is not a value")
	}
	return "", fmt.Errorf("unsupported JSON value %v", v)
}

// jsonErrorDetail adds the line and column to a JSON syntax error.
func jsonErrorDetail(b []byte, err error) error {
	var se *json.SyntaxError
	if !errors.As(err, &se) {
		return err
	}
	line, col := 1, 1
	for _, c := range b[:min(int(se.Offset), len(b))] {
		if c == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return fmt.Errorf("line %d, column %d: %w", line, col, err)
}
