package main

import (
	"context"
	"github.com/posagent/posagent/internal/testio"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRun(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sim")
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut testio.Buffer
	code := make(chan int, 1)
	go func() { code <- run(ctx, []string{"--dir", dir}, &out, &errOut) }()
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(out.String(), "control"); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no start-up lines: %q %q", out.String(), errOut.String())
		}
	}
	for _, n := range []string{"printer", "scanner", "display", "control.addr"} {
		if _, err := os.Lstat(filepath.Join(dir, n)); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
	cancel()
	if c := <-code; c != 0 {
		t.Errorf("exit %d after SIGINT: %s", c, errOut.String())
	}
	if _, err := os.Lstat(filepath.Join(dir, "printer")); err == nil {
		t.Error("links left behind after exit")
	}
}

func TestRun_Usage(t *testing.T) {
	for _, args := range [][]string{nil, {"--dir"}, {"--dir", "x", "extra"}, {"--nope"}, {"--dir", "x", "--printer-profile", "no-such-printer"}} {
		var out, errOut testio.Buffer
		if c := run(context.Background(), args, &out, &errOut); c != 2 {
			t.Errorf("%v: exit %d, want 2", args, c)
		}
	}
}

func TestRun_HelpDocumentsControlAPI(t *testing.T) {
	var out, errOut testio.Buffer
	if c := run(context.Background(), []string{"--help"}, &out, &errOut); c != 2 && c != 0 {
		t.Fatalf("--help: exit %d", c)
	}
	for _, want := range []string{"POST /scanner/scan", "GET  /display", "POST /printer/state", "GET  /printer/jobs", "POST /DEVICE/unplug", "down_ms", "control.addr", "barcodes", "--printer-profile"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("--help does not mention %q", want)
		}
	}
}
