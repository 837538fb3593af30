package broker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// TestTopicLimitHoldsUnderConcurrentCreation creates topics from many
// goroutines at once: exactly MaxTopics succeed, the rest are
// ErrLimitReached, and deleting one makes room for one more.
func TestTopicLimitHoldsUnderConcurrentCreation(t *testing.T) {
	b := openBroker(t, t.TempDir(), func(o *Options) { o.MaxTopics = 3 })
	defer b.Close()
	ctx := context.Background()
	var created, refused atomic.Int32
	var wg sync.WaitGroup
	for i := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := b.CreateTopic(ctx, fmt.Sprintf("t%d", i), 1, nil)
			switch {
			case err == nil:
				created.Add(1)
			case errors.Is(err, ErrLimitReached):
				refused.Add(1)
				if !strings.Contains(err.Error(), "topic limit (3) is reached") {
					t.Errorf("refusal text %q", err)
				}
			default:
				t.Errorf("create t%d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if created.Load() != 3 || refused.Load() != 9 || len(b.Topics()) != 3 {
		t.Fatalf("created %d, refused %d, topics %d; want 3, 9, 3", created.Load(), refused.Load(), len(b.Topics()))
	}
	if err := b.ValidateTopic("more", 1, nil); !errors.Is(err, ErrLimitReached) {
		t.Fatalf("validate-only creation at the limit: %v, want ErrLimitReached", err)
	}
	if err := b.DeleteTopic(ctx, b.Topics()[0].Name); err != nil {
		t.Fatal(err)
	}
	if _, err := b.CreateTopic(ctx, "after-delete", 1, nil); err != nil {
		t.Fatalf("create after a delete: %v", err)
	}
}

// TestQueueLimitIsPerVhost checks the 406 refusal and its text, that
// redeclaring an existing queue is not refused, that each vhost has its own
// count, and that concurrent declarations never pass the limit.
func TestQueueLimitIsPerVhost(t *testing.T) {
	b := openBroker(t, t.TempDir(), func(o *Options) { o.MaxQueuesPerVhost = 2 })
	defer b.Close()
	ctx := context.Background()
	mustDeclareQueue(t, b, "/", "", QueueSpec{Name: "q1", Durable: true})
	mustDeclareQueue(t, b, "/", "", QueueSpec{Name: "q2"})
	_, _, err := b.DeclareQueue(ctx, "/", "", QueueSpec{Name: "q3"})
	wantModelError(t, err, ErrPreconditionFailed, "cannot declare queue 'q3': queue limit in vhost '/' (2) is reached")
	if !errors.Is(err, ErrLimitReached) {
		t.Fatalf("%v is not ErrLimitReached", err)
	}
	if _, created, err := b.DeclareQueue(ctx, "/", "", QueueSpec{Name: "q1", Durable: true}); err != nil || created {
		t.Fatalf("redeclare at the limit: created %v, %v", created, err)
	}
	if err := b.CreateVhost(ctx, "other"); err != nil {
		t.Fatal(err)
	}
	var ok, refused atomic.Int32
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, err := b.DeclareQueue(ctx, "other", "", QueueSpec{Name: fmt.Sprintf("o%d", i)})
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, ErrLimitReached):
				refused.Add(1)
			default:
				t.Errorf("declare o%d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 2 || refused.Load() != 6 {
		t.Fatalf("vhost other: %d declared, %d refused; want 2 and 6", ok.Load(), refused.Load())
	}
	if _, err := b.DeleteQueue(ctx, "/", "", "q2", QueueDeleteCheck{}); err != nil {
		t.Fatal(err)
	}
	mustDeclareQueue(t, b, "/", "", QueueSpec{Name: "q3"})
}
