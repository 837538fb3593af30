package config

import (
	"errors"
	"strconv"
	"strings"
	"time"
)

// value reads and writes one field of a Config as text. It is the same
// interface as pflag.Value, so a value can back a command-line flag, and the
// one parser serves flags and environment variables alike.
type value interface {
	String() string
	Set(string) error
	Type() string
}

type stringValue struct{ p *string }

func (v stringValue) String() string     { return *v.p }
func (v stringValue) Set(s string) error { *v.p = s; return nil }
func (v stringValue) Type() string       { return "string" }

type durationValue struct{ p *time.Duration }

func (v durationValue) String() string { return formatDuration(*v.p) }
func (v durationValue) Type() string   { return "duration" }

func (v durationValue) Set(s string) error {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return errors.New("not a duration (examples: 500ms, 10s, 5m, 168h)")
	}
	*v.p = d
	return nil
}

type int64Value struct{ p *int64 }

func (v int64Value) String() string { return strconv.FormatInt(*v.p, 10) }
func (v int64Value) Type() string   { return "int" }

func (v int64Value) Set(s string) error {
	n, err := parseInt(s, 64)
	if err != nil {
		return err
	}
	*v.p = n
	return nil
}

type intValue struct{ p *int }

func (v intValue) String() string { return strconv.Itoa(*v.p) }
func (v intValue) Type() string   { return "int" }

func (v intValue) Set(s string) error {
	n, err := parseInt(s, strconv.IntSize)
	if err != nil {
		return err
	}
	*v.p = int(n)
	return nil
}

// parseInt parses a decimal integer that fits in bits bits.
func parseInt(s string, bits int) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, bits)
	switch {
	case errors.Is(err, strconv.ErrRange):
		return 0, errors.New("out of range")
	case err != nil:
		return 0, errors.New("not a whole number")
	}
	return n, nil
}

// formatDuration writes d as time.Duration.String does, without the zero
// minutes and seconds that make "168h" read as "168h0m0s".
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

type boolValue struct{ p *bool }

func (v boolValue) String() string { return strconv.FormatBool(*v.p) }
func (v boolValue) Type() string   { return "bool" }

func (v boolValue) Set(s string) error {
	b, err := strconv.ParseBool(strings.TrimSpace(s))
	if err != nil {
		return errors.New("not a boolean (true or false)")
	}
	*v.p = b
	return nil
}
