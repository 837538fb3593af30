package bench

import (
	"fmt"
	"strconv"
	"strings"
)

// ParseBytes reads a size such as 1GiB, 512MiB, 1GB, 64KB or 1048576.
// KB, MB and GB are powers of 1000; KiB, MiB and GiB powers of 1024.
func ParseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   int64
	}{
		{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
		{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1},
	}
	mult := int64(1)
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = strings.TrimSpace(num), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("size %q: want a number of bytes, optionally with KB, MB, GB, KiB, MiB or GiB", s)
	}
	return int64(v * float64(mult)), nil
}
