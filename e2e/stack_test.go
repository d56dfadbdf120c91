package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	terminal   = "T1"
	apiToken   = "e2e-token-0123456789abcdef"
	wechatCode = "134567890123456789"
)

// buildBinaries builds posagent, acquirerd and possim from this module into a temporary
// directory and returns it.
func buildBinaries(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go tool to build the binaries: %v", err)
	}
	dir := t.TempDir()
	cmd := exec.Command(goTool, "build", "-o", dir+string(filepath.Separator), "./cmd/posagent", "./cmd/acquirerd", "./cmd/possim")
	cmd.Dir = ".." // the module root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return dir
}

// proc is a running program with its output in a log file.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed when it has exited
}

// startProc runs bin/args[0] in dir with stdout and stderr in dir/logName. When ready
// is not empty, it waits (bounded) for a stdout line starting with it and returns the
// rest of that line.
func startProc(t *testing.T, bin, dir, logName, ready string, env []string, args ...string) (*proc, string) {
	t.Helper()
	logPath := filepath.Join(dir, logName)
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(bin, args[0]), args[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start %s: %v", args[0], err)
	}
	p := &proc{name: args[0], cmd: cmd, log: logPath, done: make(chan struct{})}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logf, line)
			if rest, ok := strings.CutPrefix(line, ready); ok && ready != "" {
				select {
				case found <- strings.TrimSpace(rest):
				default:
				}
			}
		}
		io.Copy(io.Discard, stdout)
		cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	t.Cleanup(p.stop)
	if ready == "" {
		return p, ""
	}
	select {
	case s := <-found:
		return p, s
	case <-p.done:
		t.Fatalf("%s exited before it was ready; log %s:\n%s", p.name, logPath, tail(logPath, 3000))
	case <-time.After(30 * time.Second):
		t.Fatalf("%s not ready in 30 s; log %s:\n%s", p.name, logPath, tail(logPath, 3000))
	}
	return p, ""
}

// kill sends SIGKILL and waits until the process is gone.
func (p *proc) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop sends SIGTERM and waits (SIGKILL after 10 s).
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.kill()
	}
}

// tail returns the end of a file, at most n bytes.
func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// grepLog returns the lines of a file that contain any of the words.
func grepLog(path string, words ...string) []string {
	b, _ := os.ReadFile(path)
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		for _, w := range words {
			if w != "" && strings.Contains(line, w) {
				out = append(out, line)
				break
			}
		}
	}
	return out
}

// stack is acquirerd on SQLite, possim and posagent run as processes in one directory.
type stack struct {
	t      *testing.T
	bin    string
	dir    string
	acqURL string
	acqDB  string
	simURL string
	agent  *proc
	api    string // the agent's local API, http://ADDR (changes at every start)
	starts int
	logs   []string // the agent's log of each start
	client *http.Client
}

// acqOptions are acquirerd's simulation timings.
type acqOptions struct {
	SimDelay, SimPending time.Duration
}

func newStack(t *testing.T, bin string, acq acqOptions) *stack {
	t.Helper()
	s := &stack{t: t, bin: bin, dir: t.TempDir(), client: &http.Client{Timeout: 10 * time.Second}}
	if keep := os.Getenv("POSAGENT_E2E_DIR"); keep != "" {
		// Kept for a look afterwards (the logs, the databases).
		s.dir = filepath.Join(keep, fmt.Sprintf("run-%d", time.Now().UnixNano()))
		if err := os.MkdirAll(s.dir, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	s.acqDB = "sqlite:" + filepath.Join(s.dir, "acquirer.db")

	// Provision the terminal as `make demo` does: its secret goes to the key file.
	var out bytes.Buffer
	add := exec.Command(filepath.Join(bin, "acquirerd"), "terminals", "add", terminal, "--db", s.acqDB)
	add.Stdout, add.Stderr = &out, &out
	if err := add.Run(); err != nil {
		t.Fatalf("acquirerd terminals add: %v: %s", err, out.String())
	}
	secret := regexp.MustCompile(`(?m)^[0-9a-f]{64}$`).FindString(out.String())
	if secret == "" {
		t.Fatalf("acquirerd terminals add printed no secret: %s", out.String())
	}
	if err := os.WriteFile(filepath.Join(s.dir, "terminal.key"), []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	_, url := startProc(t, bin, s.dir, "acquirerd.log", "acquirerd listening on ", nil,
		"acquirerd", "--listen", "127.0.0.1:0", "--db", s.acqDB, "--sim-delay", acq.SimDelay.String(), "--sim-pending", acq.SimPending.String())
	s.acqURL = url

	startProc(t, bin, s.dir, "possim.log", "", nil, "possim", "--dir", filepath.Join(s.dir, "sim"), "--paper-dots", "384")
	addrFile := filepath.Join(s.dir, "sim", "control.addr")
	deadline := time.Now().Add(15 * time.Second)
	for {
		b, err := os.ReadFile(addrFile)
		if err == nil && len(bytes.TrimSpace(b)) > 0 {
			s.simURL = "http://" + strings.TrimSpace(string(b))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("possim wrote no %s in 15 s:\n%s", addrFile, tail(filepath.Join(s.dir, "possim.log"), 2000))
		}
		time.Sleep(20 * time.Millisecond)
	}
	return s
}

// writeConfig writes the agent's config (posagent.yaml in the stack's directory).
func (s *stack) writeConfig(yaml string) {
	s.t.Helper()
	if err := os.WriteFile(filepath.Join(s.dir, "posagent.yaml"), []byte(yaml), 0o600); err != nil {
		s.t.Fatal(err)
	}
}

// startAgent starts `posagent run` and waits until it serves.
func (s *stack) startAgent() {
	s.t.Helper()
	s.starts++
	logName := fmt.Sprintf("posagent-%02d.log", s.starts)
	s.logs = append(s.logs, filepath.Join(s.dir, logName))
	env := []string{"POSAGENT_API_TOKEN=" + apiToken, "POSAGENT_ACQUIRER=" + s.acqURL, "POSAGENT_LISTEN=127.0.0.1:0"}
	p, url := startProc(s.t, s.bin, s.dir, logName, "posagent ready on ", env, "posagent", "run", "--config", "posagent.yaml")
	s.agent, s.api = p, url
}

// killAgent SIGKILLs the agent.
func (s *stack) killAgent() {
	s.agent.kill()
}

// do sends a request to the agent's API; out (if not nil) gets the JSON answer.
func (s *stack) do(method, path string, body, out any) (int, error) {
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.api+path, r)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+apiToken)
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: %d %s: %w", method, path, resp.StatusCode, data, err)
		}
	}
	if resp.StatusCode >= 300 {
		return resp.StatusCode, fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, bytes.TrimSpace(data))
	}
	return resp.StatusCode, nil
}

// scan makes possim's scanner read a code.
func (s *stack) scan(code string) error {
	b, _ := json.Marshal(map[string]string{"code": code, "aim": "]Q1"})
	resp, err := s.client.Post(s.simURL+"/scanner/scan", "application/json", bytes.NewReader(b))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		data, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("possim scan: %d %s", resp.StatusCode, data)
	}
	return nil
}

// metric reads one unlabelled gauge from the agent's /metrics.
func (s *stack) metric(name string) (float64, error) {
	req, _ := http.NewRequest("GET", s.api+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+apiToken)
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != 200 {
		return 0, fmt.Errorf("GET /metrics: %d", resp.StatusCode)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(rest), 64)
		}
	}
	return 0, fmt.Errorf("no %s in /metrics", name)
}

// ledgerEntry is a line of `acquirerd ledger --json`.
type ledgerEntry struct {
	Terminal       string `json:"terminal"`
	Sequence       uint64 `json:"sequence"`
	SaleID         string `json:"sale_id"`
	IdempotencyKey string `json:"idempotency_key"`
	Amount         int64  `json:"amount"`
	Currency       string `json:"currency"`
	State          string `json:"state"`
	Captured       int64  `json:"captured"`
	Refunded       int64  `json:"refunded"`
	Source         string `json:"source"`
}

// ledger runs `acquirerd ledger --json` for the terminal.
func (s *stack) ledger() ([]ledgerEntry, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(filepath.Join(s.bin, "acquirerd"), "ledger", "--db", s.acqDB, "--terminal", terminal, "--json")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("acquirerd ledger: %v: %s", err, stderr.String())
	}
	var out []ledgerEntry
	dec := json.NewDecoder(&stdout)
	for {
		var l ledgerEntry
		if err := dec.Decode(&l); errors.Is(err, io.EOF) {
			return out, nil
		} else if err != nil {
			return nil, fmt.Errorf("acquirerd ledger: %w", err)
		}
		out = append(out, l)
	}
}
