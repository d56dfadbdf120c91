package device

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/posagent/posagent/internal/possim"
)

const techToken = "tech-token-0123456789abcdef"

func withTechnician(c *Config) { c.API.TechnicianToken = techToken }

// TestStatus_Routes checks the gate without a browser: Host, sign-in, cookie, tickets.
func TestStatus_Routes(t *testing.T) {
	e := newEnv(t, withTechnician)
	req := func(method, path, host, cookie, auth, body string) *http.Response {
		t.Helper()
		r, _ := http.NewRequest(method, e.url+path, strings.NewReader(body))
		if host != "" {
			r.Host = host
		}
		if cookie != "" {
			r.Header.Set("Cookie", cookie)
		}
		if auth != "" {
			r.Header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	t.Run("HostChecked", func(t *testing.T) {
		for _, p := range []string{"/status", "/v1/status"} {
			if got := req("GET", p, "evil.example:7480", "", testToken, "").StatusCode; got != http.StatusMisdirectedRequest {
				t.Errorf("GET %s with a foreign Host: %d, want 421", p, got)
			}
		}
		for _, h := range []string{"localhost:7480", "[::1]:7480", "127.0.0.1"} {
			if got := req("GET", "/v1/status", h, "", testToken, "").StatusCode; got != 200 {
				t.Errorf("Host %s: %d, want 200", h, got)
			}
		}
	})
	t.Run("SignIn", func(t *testing.T) {
		if got := req("GET", "/status/state", "", "", "", "").StatusCode; got != 401 {
			t.Errorf("state without a session: %d", got)
		}
		if got := req("POST", "/status/session", "", "", "", `{"token":"`+testToken+`"}`).StatusCode; got != 401 {
			t.Errorf("the POS token signed a technician in: %d", got)
		}
		resp := req("POST", "/status/session", "", "", "", `{"token":"`+techToken+`"}`)
		cs := resp.Cookies()
		if resp.StatusCode != 200 || len(cs) != 1 || !cs[0].HttpOnly || cs[0].SameSite != http.SameSiteStrictMode || cs[0].Secure {
			t.Fatalf("sign-in: %d %+v", resp.StatusCode, cs)
		}
		cookie := cs[0].Name + "=" + cs[0].Value
		if got := req("GET", "/status/state", "", cookie, "", "").StatusCode; got != 200 {
			t.Errorf("state with the session: %d", got)
		}
		if got := req("GET", "/v1/status", "", cookie, "", "").StatusCode; got != 401 {
			t.Errorf("the session opened the POS API: %d", got)
		}
		logs := req("GET", "/v1/logs", "", "", techToken, "")
		b, _ := io.ReadAll(logs.Body)
		if logs.StatusCode != 200 || !strings.Contains(string(b), "posagent ready") {
			t.Errorf("logs: %d %q", logs.StatusCode, b)
		}
		var tk struct{ Ticket string }
		json.NewDecoder(req("POST", "/v1/events/ticket", "", cookie, "", "").Body).Decode(&tk)
		if tk.Ticket == "" {
			t.Fatal("no ticket")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		r, _ := http.NewRequestWithContext(ctx, "GET", e.url+"/v1/events?ticket="+tk.Ticket, nil)
		first, err := http.DefaultClient.Do(r)
		if err != nil || first.StatusCode != 200 {
			t.Fatalf("events with a ticket: %v %v", first, err)
		}
		first.Body.Close()
		if got := req("GET", "/v1/events?ticket="+tk.Ticket, "", "", "", "").StatusCode; got != 401 {
			t.Errorf("a ticket used twice: %d", got)
		}
	})
}

// chromiumPath finds Debian's chromium; without it the browser test skips, except in CI.
func chromiumPath(t *testing.T) string {
	for _, n := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is missing: .ci/run installs it (apt-get install chromium)")
	}
	t.Skip("chromium is not installed (apt-get install chromium): the status page's browser test skips")
	return ""
}

// TestStatus_Browser drives the page in headless chromium against the real stack.
func TestStatus_Browser(t *testing.T) {
	if testing.Short() {
		// Under -short (the suite under qemu-user) the browser is the host's, not the
		// terminal's: the page is tested in the full run.
		t.Skip("drives the host's chromium; skipped with -short")
	}
	exe := chromiumPath(t)
	e := newEnv(t, withTechnician)
	// The browser's profile lives outside t.TempDir: chromium's helper processes may still
	// be writing it when the test ends, and a failed cleanup must not fail the test.
	profile, err := os.MkdirTemp("", "posagent-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(profile) })
	opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]), chromedp.ExecPath(exe), chromedp.NoSandbox,
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.UserDataDir(profile))
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer acancel()
	var mu sync.Mutex
	var consoleErrs []string
	listen := func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.APITypeError || ev.Type == runtime.APITypeWarning {
				var args []string
				for _, a := range ev.Args {
					args = append(args, string(a.Value)+a.Description)
				}
				consoleErrs = append(consoleErrs, "console: "+strings.Join(args, " "))
			}
		case *runtime.EventExceptionThrown:
			consoleErrs = append(consoleErrs, "exception: "+ev.ExceptionDetails.Text+describe(ev.ExceptionDetails.Exception))
		case *cdplog.EventEntryAdded:
			if ev.Entry.Level == cdplog.LevelError {
				consoleErrs = append(consoleErrs, "log: "+ev.Entry.Text+" "+ev.Entry.URL)
			}
		}
	}
	// The pinned cdproto does not know every event of a newer chromium ("unknown
	// IPAddressSpace value"): those are skipped quietly, other errors are logged.
	errorf := func(format string, args ...any) {
		if !strings.HasPrefix(format, "could not unmarshal event") {
			fmt.Fprintf(os.Stderr, "chromedp: "+format+"\n", args...)
		}
	}
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithErrorf(errorf))
	defer cancel()
	chromedp.ListenTarget(ctx, listen)
	ctx, tcancel := context.WithTimeout(ctx, 30*time.Second)
	defer tcancel()
	shot := func(name string, w, h int64, mobile bool) {
		t.Helper()
		var png []byte
		if err := chromedp.Run(ctx, emulation.SetDeviceMetricsOverride(w, h, 1, mobile), chromedp.Sleep(200*time.Millisecond),
			chromedp.FullScreenshot(&png, 100)); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(e.dir, name)
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", p)
		if dir := os.Getenv("POSAGENT_SCREENSHOTS"); dir != "" { // to keep them after the test
			os.WriteFile(filepath.Join(dir, name), png, 0o644)
		}
	}

	// Sign in on a phone-sized screen; the devices come up green.
	err = chromedp.Run(ctx, cdplog.Enable(), emulation.SetDeviceMetricsOverride(390, 844, 1, true),
		chromedp.Navigate(e.url+"/status"),
		chromedp.WaitVisible("#token", chromedp.ByID),
		chromedp.SendKeys("#token", techToken, chromedp.ByID),
		chromedp.Click(`#login-form button`, chromedp.ByQuery),
		chromedp.WaitVisible(`#devices li[data-device="printer"].up`, chromedp.ByQuery),
		chromedp.WaitVisible(`#devices li[data-device="scanner"].up`, chromedp.ByQuery),
		chromedp.WaitVisible(`#devices li[data-device="display"].up`, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatalf("sign in and see the devices: %v", err)
	}
	waitText(t, ctx, "#live", "live")

	// The print test prints the test page on possim's printer.
	if err := chromedp.Run(ctx, chromedp.Click("#test-print", chromedp.ByID)); err != nil {
		t.Fatal(err)
	}
	jctx, jcancel := context.WithTimeout(context.Background(), 10*time.Second)
	job, err := e.sim.Printer.WaitJob(jctx, 1)
	jcancel()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(job.Lines, "\n"), "POSAGENT TEST PAGE") {
		t.Errorf("test page printed %q", job.Lines)
	}
	waitText(t, ctx, "#test-result", "test page printed")
	shot("status-phone.png", 390, 844, true)

	// A scanner unplugged in possim turns red within 2 s.
	start := time.Now()
	if err := e.sim.Unplug(possim.ScannerName, 3*time.Second); err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
	err = chromedp.Run(rctx, chromedp.WaitVisible(`#devices li[data-device="scanner"].down`, chromedp.ByQuery))
	rcancel()
	if err != nil {
		t.Fatalf("the unplugged scanner is not red after %v: %v", time.Since(start), err)
	}
	t.Logf("scanner red after %v", time.Since(start).Round(time.Millisecond))
	shot("status-desktop.png", 1280, 900, false)

	mu.Lock()
	defer mu.Unlock()
	for _, m := range consoleErrs {
		t.Errorf("browser %s", m)
	}
}

// waitText waits until the element's text contains want.
func waitText(t *testing.T, ctx context.Context, sel, want string) {
	t.Helper()
	var got string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if err := chromedp.Run(ctx, chromedp.Text(sel, &got, chromedp.ByQuery)); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(got, want) {
			return
		}
	}
	t.Fatalf("%s shows %q, want %q", sel, got, want)
}

func describe(o *runtime.RemoteObject) string {
	if o == nil {
		return ""
	}
	return " " + o.Description
}

func TestConfig_TechnicianToken(t *testing.T) {
	for _, tt := range []struct {
		name, token string
		ok          bool
	}{{"Off", "", true}, {"Good", techToken, true}, {"Short", "short", false}, {"SameAsPOS", testToken, false}} {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			c.Terminal, c.StateDir, c.KeyFile, c.Acquirer.URL = "T1", t.TempDir(), "/k", "http://127.0.0.1:1"
			c.API.Token, c.API.TechnicianToken = testToken, tt.token
			err := c.Validate()
			if got := err == nil || !strings.Contains(err.Error(), "technician_token"); got != tt.ok {
				t.Errorf("Validate: %v", err)
			}
		})
	}
}
