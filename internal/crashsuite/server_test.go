//go:build unix

package crashsuite

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// buildWharf builds the wharf command into dir, with the race detector when
// the tests run with it, and returns the binary's path.
func buildWharf(t *testing.T, dir string) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		if root := os.Getenv("GOROOT"); root != "" {
			goTool = filepath.Join(root, "bin", "go")
		} else {
			t.Skipf("building wharf needs the go command: %v", err)
		}
	}
	bin := filepath.Join(dir, "wharf")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "github.com/wharfmq/wharf/cmd/wharf")
	cmd := exec.Command(goTool, args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return bin
}

// wharfServer runs `wharf serve` on one data directory and one set of
// addresses, one process (incarnation) after another.
type wharfServer struct {
	t       *testing.T
	bin     string
	dataDir string
	logDir  string
	kafka   string
	amqp    string
	http    string

	runs int // incarnations started
	proc *wharfProc
}

// wharfProc is one incarnation.
type wharfProc struct {
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed once the process is reaped
	err     error         // Wait's result, once done is closed
}

func newWharfServer(t *testing.T, bin, dir string) *wharfServer {
	t.Helper()
	s := &wharfServer{
		t: t, bin: bin,
		dataDir: filepath.Join(dir, "data"),
		logDir:  filepath.Join(dir, "logs"),
		kafka:   freeLoopbackAddr(t),
		amqp:    freeLoopbackAddr(t),
		http:    freeLoopbackAddr(t),
	}
	if err := os.MkdirAll(s.logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p := s.proc; p != nil {
			select {
			case <-p.done:
			default:
				p.cmd.Process.Kill()
				<-p.done
			}
		}
	})
	return s
}

// freeLoopbackAddr returns a loopback address whose port was free a moment
// ago.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// start starts the next incarnation without waiting for it to be ready.
func (s *wharfServer) start() {
	s.t.Helper()
	if s.proc != nil {
		select {
		case <-s.proc.done:
		default:
			s.t.Fatal("starting wharf while an earlier incarnation still runs")
		}
	}
	s.runs++
	logPath := filepath.Join(s.logDir, fmt.Sprintf("serve-%03d.log", s.runs))
	logFile, err := os.Create(logPath)
	if err != nil {
		s.t.Fatal(err)
	}
	cmd := exec.Command(s.bin, "serve",
		"--data-dir", s.dataDir,
		"--kafka-listen", s.kafka,
		"--amqp-listen", s.amqp,
		"--http-listen", s.http,
		"--fsync", "always",
		// Small segments, so that segments roll and recovery meets several
		// of them per log.
		"--segment-bytes", "65536",
		// Little queue memory, so that queued messages are paged out and
		// read back from the log.
		"--amqp-queue-memory-bytes", "65536",
	)
	cmd.Env = serverEnv()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		s.t.Fatal(err)
	}
	p := &wharfProc{cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	s.proc = p
}

// serverEnv is the test's environment without WHARF_ settings, so that the
// server runs with its defaults and the flags given.
func serverEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "WHARF_") {
			env = append(env, kv)
		}
	}
	return env
}

// waitReady waits until /readyz answers 200: the broker has recovered its
// data and every listener is up.
func (s *wharfServer) waitReady() {
	s.t.Helper()
	p := s.proc
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := client.Get("http://" + s.http + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-p.done:
			s.t.Fatalf("wharf exited before it was ready: %v\n%s", p.err, s.output(p))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("wharf not ready after 2 minutes\n%s", s.output(p))
		}
	}
}

// exited reports whether the current incarnation has exited on its own.
func (s *wharfServer) exited() bool {
	select {
	case <-s.proc.done:
		return true
	default:
		return false
	}
}

// kill sends SIGKILL to the current incarnation and waits until it is
// reaped. It fails the test if the process had exited on its own or
// reported a data race.
func (s *wharfServer) kill() {
	s.t.Helper()
	p := s.proc
	kerr := p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if kerr != nil || !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		s.t.Fatalf("wharf did not die of SIGKILL (kill: %v, exit: %v)\n%s", kerr, p.err, s.output(p))
	}
	s.checkRaces(p)
}

// stop sends SIGTERM and waits for a clean exit.
func (s *wharfServer) stop() {
	s.t.Helper()
	p := s.proc
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		s.t.Fatalf("SIGTERM: %v", err)
	}
	select {
	case <-p.done:
	case <-time.After(2 * time.Minute):
		p.cmd.Process.Kill()
		<-p.done
		s.t.Fatalf("wharf did not stop within 2 minutes of SIGTERM\n%s", s.output(p))
	}
	if p.err != nil {
		s.t.Fatalf("wharf stopped with %v\n%s", p.err, s.output(p))
	}
	s.checkRaces(p)
}

func (s *wharfServer) checkRaces(p *wharfProc) {
	s.t.Helper()
	if out := s.output(p); strings.Contains(out, "WARNING: DATA RACE") {
		s.t.Fatalf("data race in wharf (%s):\n%s", p.logPath, out)
	}
}

// output returns what an incarnation wrote, its last 64 KiB at most.
func (s *wharfServer) output(p *wharfProc) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return fmt.Sprintf("(reading %s: %v)", p.logPath, err)
	}
	const keep = 64 << 10
	if len(b) > keep {
		b = append([]byte("...\n"), b[len(b)-keep:]...)
	}
	return string(bytes.TrimSpace(b))
}
