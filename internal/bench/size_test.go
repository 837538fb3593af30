package bench

import "testing"

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{
		"1GiB": 1 << 30, "512MiB": 512 << 20, "1GB": 1e9, "64KB": 64e3, "1048576": 1 << 20,
		"2 MiB": 2 << 20, "1.5GiB": 3 << 29, "10B": 10,
	} {
		if got, err := ParseBytes(in); err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "GiB", "-1MB", "1XB", "lots"} {
		if got, err := ParseBytes(bad); err == nil {
			t.Errorf("ParseBytes(%q) = %d, want an error", bad, got)
		}
	}
}
