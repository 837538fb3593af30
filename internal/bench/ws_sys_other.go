//go:build !linux

package bench

import (
	"errors"
	"syscall"
	"time"
)

// RaiseFileLimit is only implemented on Linux; elsewhere it reports the
// limit as unknown.
func RaiseFileLimit(want uint64) (uint64, error) {
	return 0, errors.New("raising the file limit is only implemented on Linux")
}

func processRSS(int) (int64, error) {
	return 0, errors.New("reading a process's RSS is only implemented on Linux")
}

func selfCPU() time.Duration { return 0 }

func childSysProcAttr() *syscall.SysProcAttr { return nil }
