package logbuf

import (
	"sync"
	"testing"
)

func TestBufferCountsLinesWithEveryFragment(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				b.Logger().Info("refused", "listener", "kafka")
			}
		})
	}
	wg.Wait()
	b.Logger().Info("refused", "listener", "amqp")
	if n := b.Count("refused", "listener=kafka"); n != 800 {
		t.Errorf("%d kafka lines, want 800", n)
	}
	if n := b.Count("refused"); n != 801 {
		t.Errorf("%d lines, want 801", n)
	}
	if n := b.Count("nothing like it"); n != 0 {
		t.Errorf("%d lines match nothing, want 0", n)
	}
}
