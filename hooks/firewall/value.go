package firewall

import (
	"encoding/json"
	"math"
	"math/big"
	"strconv"
	"strings"
)

// This file holds the JSON value semantics shared by rules and the schema
// validator. Values are what jsonpath.Decode produces: nil, bool, string,
// json.Number, []any and map[string]any.
//
// Numbers compare as IEEE-754 doubles: exact for integers up to 2^53 and for
// every decimal a person writes in a rule or schema. A number beyond the
// double range (1e400) is +Inf or -Inf. The one exception is multipleOf,
// which is exact (see multipleOf).

// toFloat returns v as a float64 if it is a JSON number.
func toFloat(v any) (float64, bool) {
	switch n := v.(type) {
	case json.Number:
		f, err := strconv.ParseFloat(string(n), 64)
		if err != nil {
			// Out of range: ParseFloat returns ±Inf with ErrRange, which
			// orders correctly; any other error is not a number.
			if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
				return f, true
			}
			return 0, false
		}
		return f, true
	case float64:
		return n, true
	}
	return 0, false
}

// isInteger reports whether a JSON number has no fractional part, as JSON
// Schema defines "integer" (1.0 and 1e2 are integers).
func isInteger(v any) bool {
	if n, ok := v.(json.Number); ok && !strings.ContainsAny(string(n), ".eE") {
		return true
	}
	f, ok := toFloat(v)
	return ok && !math.IsInf(f, 0) && f == math.Trunc(f)
}

// jsonEqual is JSON equality: same type and value, numbers by value (1 and
// 1.0 are equal), objects regardless of member order.
func jsonEqual(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case string:
		y, ok := b.(string)
		return ok && x == y
	case json.Number, float64:
		if y, ok := b.(json.Number); ok {
			if xn, ok := x.(json.Number); ok && xn == y {
				return true
			}
		}
		fx, ok1 := toFloat(a)
		fy, ok2 := toFloat(b)
		return ok1 && ok2 && fx == fy
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !jsonEqual(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, xv := range x {
			yv, ok := y[k]
			if !ok || !jsonEqual(xv, yv) {
				return false
			}
		}
		return true
	}
	return false
}

// jsonType names v's JSON type, for messages.
func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case json.Number, float64:
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return "unknown"
}

// exactRat parses a JSON number literal exactly, refusing exponents large
// enough to make the rational expensive (a hostile event could send
// 1e999999999).
func exactRat(lit string) (*big.Rat, bool) {
	if len(lit) > 64 {
		return nil, false
	}
	if i := strings.IndexAny(lit, "eE"); i >= 0 {
		e, err := strconv.Atoi(strings.TrimPrefix(lit[i+1:], "+"))
		if err != nil || e > 400 || e < -400 {
			return nil, false
		}
	}
	r, ok := new(big.Rat).SetString(lit)
	return r, ok
}

// multipleOf reports whether the number v is an integer multiple of the
// divisor d (d > 0). It is exact when both literals are reasonable decimals
// (0.3 is a multiple of 0.1, which doubles get wrong), and falls back to
// doubles otherwise.
func multipleOf(v any, d *big.Rat, df float64) bool {
	if n, ok := v.(json.Number); ok && d != nil {
		if r, ok := exactRat(string(n)); ok {
			return new(big.Rat).Quo(r, d).IsInt()
		}
	}
	f, ok := toFloat(v)
	if !ok || math.IsInf(f, 0) {
		return false
	}
	q := f / df
	return !math.IsInf(q, 0) && q == math.Trunc(q)
}
