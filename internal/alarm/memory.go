package alarm

import "runtime/metrics"

// runtimeSamples are the runtime/metrics names RuntimeMemoryInUse reads.
var runtimeSamples = []string{
	"/memory/classes/total:bytes",
	"/memory/classes/heap/released:bytes",
	"/memory/classes/heap/free:bytes",
}

// RuntimeMemoryInUse is the memory the Go runtime holds for the process
// and uses: everything it mapped, less what it has returned to the
// operating system and the free heap it may return (heap objects, dead
// ones not yet collected included, goroutine stacks and the runtime's own
// structures). Memory outside the Go runtime (the page cache, sendfile)
// is not counted.
func RuntimeMemoryInUse() uint64 {
	s := make([]metrics.Sample, len(runtimeSamples))
	for i, name := range runtimeSamples {
		s[i].Name = name
	}
	metrics.Read(s)
	var v [3]uint64
	for i := range s {
		if s[i].Value.Kind() == metrics.KindUint64 {
			v[i] = s[i].Value.Uint64()
		}
	}
	total, released, free := v[0], v[1], v[2]
	if released+free > total {
		return 0
	}
	return total - released - free
}
