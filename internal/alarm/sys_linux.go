package alarm

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// statfsFree is the space on dir's filesystem available to an
// unprivileged process.
func statfsFree(dir string) (uint64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, &os.PathError{Op: "statfs", Path: dir, Err: err}
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// totalMemory is the machine's RAM, or the process's cgroup memory limit
// if that is lower.
func totalMemory() (uint64, error) {
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		return 0, err
	}
	total := uint64(si.Totalram) * uint64(si.Unit)
	if limit, ok := cgroupMemoryLimit(); ok && limit < total {
		total = limit
	}
	return total, nil
}

// cgroupMemoryLimit reads the memory limit of the process's cgroup (v2
// memory.max, or v1 memory.limit_in_bytes), trying the path named in
// /proc/self/cgroup and then the root of the mount, as a container sees
// its own cgroup there.
func cgroupMemoryLimit() (uint64, bool) {
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return 0, false
	}
	var candidates []string
	sc := bufio.NewScanner(bytes.NewReader(self))
	for sc.Scan() {
		// hierarchy-id:controllers:path
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case parts[0] == "0" && parts[1] == "":
			candidates = append(candidates,
				filepath.Join("/sys/fs/cgroup", parts[2], "memory.max"), "/sys/fs/cgroup/memory.max")
		case hasController(parts[1], "memory"):
			candidates = append(candidates,
				filepath.Join("/sys/fs/cgroup/memory", parts[2], "memory.limit_in_bytes"), "/sys/fs/cgroup/memory/memory.limit_in_bytes")
		}
	}
	for _, path := range candidates {
		if v, err := readLimit(path); err == nil {
			return v, true
		}
	}
	return 0, false
}

func hasController(list, name string) bool {
	for _, c := range strings.Split(list, ",") {
		if c == name {
			return true
		}
	}
	return false
}

var errNoLimit = errors.New("no limit")

// readLimit reads a cgroup limit file; "max" (v2) and the v1 sentinel of
// an unlimited group are no limit.
func readLimit(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	s := strings.TrimSpace(string(b))
	if s == "max" {
		return 0, errNoLimit
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, err
	}
	if v >= 1<<62 { // v1's "unlimited" is the largest page-aligned int64
		return 0, errNoLimit
	}
	return v, nil
}
