package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/wharfmq/wharf/internal/auth"
	"github.com/wharfmq/wharf/internal/broker"
	"github.com/wharfmq/wharf/internal/gateway"
	"github.com/wharfmq/wharf/internal/gateway/service"
	"github.com/wharfmq/wharf/internal/storage"
)

// testServer is a broker behind the gateway's HTTP handler (REST and
// WebSocket) on a real socket.
func testServer(t *testing.T) string {
	t.Helper()
	b, err := broker.Open(broker.Options{DataDir: t.TempDir(), LogDefaults: storage.DefaultLogConfig()})
	if err != nil {
		t.Fatal(err)
	}
	users := auth.NewDefaultStore()
	svc := service.New(b, nil, service.Options{AutoCreateTopics: true, DefaultPartitions: 1})
	ws := gateway.NewWebSocket(svc, users, nil, gateway.WSOptions{}, nil)
	srv := httptest.NewServer(gateway.NewHandler(gateway.Options{WebSocket: ws, Service: svc, Users: users}))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ws.Shutdown(ctx)
		srv.Close()
		if err := b.Close(); err != nil {
			t.Errorf("closing broker: %v", err)
		}
	})
	return srv.URL
}

// run runs one wharf command line against server with stdin and returns
// its standard output.
func run(t *testing.T, server, stdin string, args ...string) (string, error) {
	t.Helper()
	root := &cobra.Command{Use: "wharf", SilenceErrors: true, SilenceUsage: true}
	env := func(k string) (string, bool) {
		if k == "WHARF_SERVER" {
			return server, true
		}
		return "", false
	}
	root.AddCommand(Commands(env)...)
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(args)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	err := root.ExecuteContext(ctx)
	return out.String(), err
}

func mustRun(t *testing.T, server, stdin string, args ...string) string {
	t.Helper()
	out, err := run(t, server, stdin, args...)
	if err != nil {
		t.Fatalf("wharf %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func sortedLines(s string) []string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	slices.Sort(l)
	return l
}

func TestTopicsProduceConsume(t *testing.T) {
	srv := testServer(t)
	mustRun(t, srv, "", "topic", "create", "events", "-p", "3", "-c", "retention.ms=3600000")
	if out := mustRun(t, srv, "", "topic", "list"); !regexpLine(out, `events\s+3\s`) {
		t.Fatalf("topic list:\n%s", out)
	}
	var desc struct {
		Partitions []map[string]any `json:"partitions"`
		Configs    []map[string]any `json:"configs"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, srv, "", "topic", "describe", "events", "-o", "json")), &desc); err != nil {
		t.Fatal(err)
	}
	if len(desc.Partitions) != 3 {
		t.Fatalf("describe: %+v", desc)
	}
	mustRun(t, srv, "", "topic", "alter", "events", "--set", "retention.ms=7200000")
	if out := mustRun(t, srv, "", "topic", "describe", "events"); !strings.Contains(out, "7200000") {
		t.Fatalf("after alter:\n%s", out)
	}

	var in strings.Builder
	var want []string
	for i := range 1200 {
		line := fmt.Sprintf("k%d:value %d", i%17, i)
		in.WriteString(line + "\n")
		want = append(want, line)
	}
	slices.Sort(want)
	mustRun(t, srv, in.String(), "produce", "events", "-K", ":", "--batch", "100")
	out := mustRun(t, srv, "", "consume", "events", "--exit-at-end", "-K", ":")
	if got := sortedLines(out); !slices.Equal(got, want) {
		t.Fatalf("consumed %d lines, want %d", len(got), len(want))
	}
	// -n and --format json.
	out = mustRun(t, srv, "", "consume", "events", "-n", "5", "--format", "json", "-p", "1")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 5 {
		t.Fatalf("-n 5 gave %d lines", len(lines))
	}
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil || m["partition"] != float64(1) {
			t.Fatalf("json line %q: %v", l, err)
		}
	}
	if _, err := run(t, srv, "", "topic", "describe", "nope"); err == nil || !strings.Contains(err.Error(), "not_found") {
		t.Fatalf("describe of a missing topic: %v", err)
	}
	mustRun(t, srv, "", "topic", "delete", "events")
	if out := mustRun(t, srv, "", "topic", "list"); strings.Contains(out, "events") {
		t.Fatalf("topic list after delete:\n%s", out)
	}
}

func regexpLine(text, pattern string) bool {
	for _, l := range strings.Split(text, "\n") {
		if ok, _ := regexpMatch(pattern, l); ok {
			return true
		}
	}
	return false
}

func TestQueuesExchangesBindings(t *testing.T) {
	srv := testServer(t)
	mustRun(t, srv, "", "queue", "declare", "jobs")
	mustRun(t, srv, "", "exchange", "declare", "work", "-t", "topic")
	mustRun(t, srv, "", "binding", "declare", "work", "jobs", "-k", "job.*")
	if out := mustRun(t, srv, "", "binding", "list"); !regexpLine(out, `work\s+jobs\s+queue\s+job\.\*`) {
		t.Fatalf("binding list:\n%s", out)
	}
	if out := mustRun(t, srv, "", "exchange", "list"); !regexpLine(out, `work\s+topic\s+true`) {
		t.Fatalf("exchange list:\n%s", out)
	}
	mustRun(t, srv, "one\ntwo\nthree\n", "produce", "--exchange", "work", "--routing-key", "job.new")
	mustRun(t, srv, "lost\n", "produce", "--exchange", "work", "--routing-key", "other")
	if out := mustRun(t, srv, "", "queue", "list"); !regexpLine(out, `jobs\s+true\s+3\s+0\s+0`) {
		t.Fatalf("queue list:\n%s", out)
	}
	out := mustRun(t, srv, "", "consume", "--queue", "jobs", "-n", "2", "-K", " ")
	if out != "job.new one\njob.new two\n" {
		t.Fatalf("consume --queue:\n%q", out)
	}
	out = mustRun(t, srv, "", "consume", "--queue", "jobs", "--idle", "300ms")
	if out != "three\n" {
		t.Fatalf("consume --queue --idle: %q", out)
	}
	if out := mustRun(t, srv, "", "queue", "list"); !regexpLine(out, `jobs\s+true\s+0\s+0\s+0`) {
		t.Fatalf("queue list after consuming (acked):\n%s", out)
	}
	mustRun(t, srv, "", "binding", "delete", "work", "jobs", "-k", "job.*")
	if out := mustRun(t, srv, "", "binding", "list"); strings.Contains(out, "job.*") {
		t.Fatalf("binding list after delete:\n%s", out)
	}
	mustRun(t, srv, "", "exchange", "delete", "work")
	mustRun(t, srv, "", "queue", "delete", "jobs")
	if out := mustRun(t, srv, "", "queue", "list"); strings.Contains(out, "jobs") {
		t.Fatalf("queue list after delete:\n%s", out)
	}
}

func TestGroupsAndUsers(t *testing.T) {
	srv := testServer(t)
	mustRun(t, srv, "a\nb\nc\n", "produce", "orders")
	cl, err := NewClient(srv, "guest", "guest")
	if err != nil {
		t.Fatal(err)
	}
	body := map[string]any{"offsets": []map[string]any{{"topic": "orders", "partition": 0, "offset": 1}}}
	if err := cl.Do(t.Context(), http.MethodPost, path("groups", "billing", "offsets"), nil, body, nil); err != nil {
		t.Fatalf("commit: %v", err)
	}
	if out := mustRun(t, srv, "", "group", "list"); !strings.Contains(out, "billing") {
		t.Fatalf("group list:\n%s", out)
	}
	if out := mustRun(t, srv, "", "group", "describe", "billing"); !regexpLine(out, `orders\s+0\s+1\s+3\s+2`) {
		t.Fatalf("group describe:\n%s", out)
	}
	mustRun(t, srv, "", "user", "add", "bob", "--new-password", "s3cret", "--tags", "monitoring")
	if out := mustRun(t, srv, "", "user", "list"); !regexpLine(out, `bob\s+false\s+\[?monitoring`) {
		t.Fatalf("user list:\n%s", out)
	}
	mustRun(t, srv, "", "permission", "set", "bob", "--configure", "^bob-", "--write", ".*", "--read", ".*")
	if out := mustRun(t, srv, "", "permission", "list"); !regexpLine(out, `bob\s+/\s+\^bob-\s+\.\*\s+\.\*`) {
		t.Fatalf("permission list:\n%s", out)
	}
	mustRun(t, srv, "", "permission", "clear", "bob")
	if out := mustRun(t, srv, "", "permission", "list"); strings.Contains(out, "bob") {
		t.Fatalf("permission list after clear:\n%s", out)
	}
	// bob can log in.
	if _, err := run(t, srv, "", "topic", "list", "--user", "bob", "--password", "s3cret"); err != nil {
		t.Fatalf("bob: %v", err)
	}
	if _, err := run(t, srv, "", "topic", "list", "--user", "bob", "--password", "wrong"); err == nil {
		t.Fatal("a wrong password was accepted")
	}
	mustRun(t, srv, "", "user", "delete", "bob")
	if out := mustRun(t, srv, "", "user", "list"); strings.Contains(out, "bob") {
		t.Fatalf("user list after delete:\n%s", out)
	}
	if _, err := run(t, srv, "", "topic", "list", "-o", "yaml"); err == nil {
		t.Fatal("-o yaml accepted")
	}
}

func regexpMatch(pattern, s string) (bool, error) { return regexp.MatchString(pattern, s) }
