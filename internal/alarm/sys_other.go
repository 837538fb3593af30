//go:build !linux

package alarm

// statfsFree is not implemented here: the disk alarm is disabled.
func statfsFree(string) (uint64, error) { return 0, errUnsupported }

// totalMemory is unknown here: the default watermark is disabled.
func totalMemory() (uint64, error) { return 0, errUnsupported }
