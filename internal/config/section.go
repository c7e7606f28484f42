package config

import (
	"encoding/json"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Error is a configuration error with its full message; it wraps
// ErrInvalid like every other validation error.
type Error string

func (e Error) Error() string { return string(e) }
func (e Error) Unwrap() error { return ErrInvalid }

// SectionKeys splits hook's section of the LRAP_CONFIG file into its keys,
// refusing keys the hook does not know, so that a misspelt setting is an
// error rather than silently ignored. An absent or null section has no keys.
func SectionKeys(hook string, section json.RawMessage, known ...string) (map[string]json.RawMessage, error) {
	if len(section) == 0 || string(section) == "null" {
		return nil, nil
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(section, &keys); err != nil {
		return nil, Error("LRAP_CONFIG " + hook + ": the section must be an object")
	}
	var unknown []string
	for k := range keys {
		if !slices.Contains(known, k) {
			unknown = append(unknown, strconv.Quote(k))
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, Error("LRAP_CONFIG " + hook + ": unknown key " + strings.Join(unknown, ", ") +
			" (accepted: " + strings.Join(known, ", ") + ")")
	}
	return keys, nil
}
