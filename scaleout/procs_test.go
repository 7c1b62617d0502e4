package scaleout

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// proc is one child process (a nats-server or a registrar) whose output
// goes to a log file under the test's temporary directory. A proc can be
// killed and started again under the same name: each incarnation logs to
// its own file (name.1.log, name.2.log, …).
type proc struct {
	t    *testing.T
	name string
	dir  string // where the log files go
	path string
	args []string
	env  []string

	mu          sync.Mutex
	cmd         *exec.Cmd
	done        chan struct{} // closed when the current incarnation exited
	exitErr     error
	incarnation int
	logs        []string // every incarnation's log file, oldest first
}

// procs keeps every proc of a test, to kill them when it ends and to show
// their logs when it failed.
type procs struct {
	t   *testing.T
	dir string

	mu  sync.Mutex
	all []*proc
}

// newProcs registers the clean-up that kills every child process (and, if
// the test failed, logs the tail of each one's log files). Call it after
// t.TempDir and the other resources the children use, so that the children
// are gone before those are removed.
func newProcs(t *testing.T, dir string) *procs {
	ps := &procs{t: t, dir: dir}
	t.Cleanup(func() {
		ps.mu.Lock()
		all := append([]*proc(nil), ps.all...)
		ps.mu.Unlock()
		// Registrars first (SIGTERM: they release their leases), then the
		// NATS nodes; anything still there after the grace period is
		// killed.
		for _, p := range all {
			p.stop(10 * time.Second)
		}
		if t.Failed() {
			for _, p := range all {
				p.dumpTails(60)
			}
		}
	})
	return ps
}

// add declares a child process; start starts it.
func (ps *procs) add(name, path string, args, env []string) *proc {
	p := &proc{t: ps.t, name: name, dir: ps.dir, path: path, args: args, env: env}
	ps.mu.Lock()
	ps.all = append(ps.all, p)
	ps.mu.Unlock()
	return p
}

// start starts a new incarnation of the process.
func (p *proc) start() {
	p.t.Helper()
	if err := p.startErr(); err != nil {
		p.t.Fatal(err)
	}
}

// startErr is start for goroutines other than the test's.
func (p *proc) startErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil && !closed(p.done) {
		return fmt.Errorf("%s: already running (pid %d)", p.name, p.cmd.Process.Pid)
	}
	p.incarnation++
	logPath := filepath.Join(p.dir, fmt.Sprintf("%s.%d.log", p.name, p.incarnation))
	f, err := os.Create(logPath)
	if err != nil {
		return err
	}
	cmd := exec.Command(p.path, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("%s: start %s: %v", p.name, p.path, err)
	}
	done := make(chan struct{})
	p.cmd, p.done, p.exitErr = cmd, done, nil
	p.logs = append(p.logs, logPath)
	go func() {
		err := cmd.Wait()
		f.Close()
		p.mu.Lock()
		if p.cmd == cmd {
			p.exitErr = err
		}
		p.mu.Unlock()
		close(done)
	}()
	return nil
}

// current is the current incarnation's number (0 before the first start).
func (p *proc) current() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.incarnation
}

// lastLine is the last line of the current incarnation's log.
func (p *proc) lastLine() string {
	p.mu.Lock()
	n := len(p.logs)
	path := ""
	if n > 0 {
		path = p.logs[n-1]
	}
	p.mu.Unlock()
	if path == "" {
		return ""
	}
	lines, _, _ := tail(path, 1)
	if len(lines) == 0 {
		return "(empty log)"
	}
	return lines[0]
}

// pid is the current incarnation's process id (0 before the first start).
func (p *proc) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// running says whether the current incarnation is alive.
func (p *proc) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil && !closed(p.done)
}

// exited returns the current incarnation's exit error once it has exited.
func (p *proc) exited() (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || !closed(p.done) {
		return false, nil
	}
	return true, p.exitErr
}

// kill sends SIGKILL to the current incarnation and waits for it to be
// gone.
func (p *proc) kill() {
	p.t.Helper()
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil || closed(done) {
		p.t.Fatalf("%s: not running, cannot kill it", p.name)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		p.t.Fatalf("%s: kill: %v", p.name, err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		p.t.Fatalf("%s: still there 10s after SIGKILL", p.name)
	}
}

// stop ends the current incarnation, if any: SIGTERM, then SIGKILL after
// grace.
func (p *proc) stop(grace time.Duration) {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil || closed(done) {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
		return
	case <-time.After(grace):
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		p.t.Errorf("%s (pid %d) did not exit after SIGKILL", p.name, cmd.Process.Pid)
	}
}

// dumpTails logs the last n lines of each incarnation's log file.
func (p *proc) dumpTails(n int) {
	p.mu.Lock()
	logs := append([]string(nil), p.logs...)
	p.mu.Unlock()
	for _, path := range logs {
		lines, total, err := tail(path, n)
		if err != nil {
			p.t.Logf("== %s: %v", path, err)
			continue
		}
		p.t.Logf("== %s (last %d of %d lines)\n%s", filepath.Base(path), len(lines), total, strings.Join(lines, "\n"))
	}
}

// tail returns the last n lines of the file at path and how many it has.
func tail(path string, n int) ([]string, int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	var ring []string
	total := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		total++
		line := sc.Text()
		if len(line) > 2000 {
			line = line[:2000] + "…"
		}
		ring = append(ring, line)
		if len(ring) > n {
			ring = ring[1:]
		}
	}
	return ring, total, sc.Err()
}

// countInFile counts the lines of the file at path that contain s.
func countInFile(path, s string) int {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		if strings.Contains(sc.Text(), s) {
			n++
		}
	}
	return n
}

func closed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// freePorts returns n distinct free TCP ports on 127.0.0.1, holding all the
// listeners until every port is chosen so that none is handed out twice.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("free port: %v", err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// moduleRoot is the directory of the registrar module's go.mod.
func moduleRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command(goTool(), "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		t.Fatal("not inside the registrar module")
	}
	return filepath.Dir(gomod)
}

// goTool is the go command: the one on PATH, else the one of the toolchain
// that built this test.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// goBuild builds pkg (from the module root) into out.
func goBuild(t *testing.T, root, out, pkg string) {
	t.Helper()
	cmd := exec.Command(goTool(), "build", "-o", out, pkg)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build -o %s %s: %v\n%s", out, pkg, err, b)
	}
}

// httpGet returns the status and body of a GET of url.
func httpGet(ctx context.Context, url string) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return resp.StatusCode, body, err
}

// waitUntil polls cond every interval until it returns nil or timeout
// passes; it returns the last error.
func waitUntil(ctx context.Context, timeout, interval time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %v: %w", timeout, err)
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), err)
		case <-time.After(interval):
		}
	}
}
