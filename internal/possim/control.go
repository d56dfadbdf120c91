package possim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/posagent/posagent/drivers/scanner"
)

// ControlAddrFile is the file in DIR that holds the control interface's address
// (host:port on 127.0.0.1).
const ControlAddrFile = "control.addr"

// Control serves the control interface on 127.0.0.1 (a free port unless addr says
// otherwise), writes its address to DIR/control.addr and serves until ctx is done.
// ready, if not nil, receives the address once it listens.
//
//	GET  /                      the devices: link, tty, plugged
//	POST /scanner/scan          {"code", "suffix": "cr|lf|crlf|tab|none", "aim", "prefix", "chunk", "gap_ms"}
//	POST /scanner/noise         {"bytes": 32, "suffix": "cr"}
//	GET  /scanner               {"triggers": ["on", "off", …]}
//	GET  /display               {"lines": [2 × 20 characters], "brightness", "text"}
//	POST /printer/state         {"state": "paper-near-end|paper-out|offline|cover-open|silent|ok", "on": true}
//	GET  /printer/jobs          the jobs printed, with their text lines and QR contents
//	POST /{device}/unplug       {"down_ms": 500}: back on a new pty after that long; -1: until /plug
//	POST /{device}/plug
//
// Errors are {"error": "…"} with status 400 (bad request), 404 (no such device) or 409
// (the device is unplugged, or already is).
func (s *Sim) Control(ctx context.Context, addr string, ready chan<- string) error {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("possim control: %w", err)
	}
	file := filepath.Join(s.Dir, ControlAddrFile)
	content := []byte(ln.Addr().String() + "\n")
	if err := os.WriteFile(file, content, 0o644); err != nil {
		ln.Close()
		return fmt.Errorf("possim control: %w", err)
	}
	defer removeIfSame(file, content)
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second}
	if ready != nil {
		ready <- ln.Addr().String()
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		return nil
	}
}

// Handler returns the control interface's HTTP handler.
func (s *Sim) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusOK, s.Devices())
	})
	mux.HandleFunc("POST /scanner/scan", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Code   string `json:"code"`
			Suffix string `json:"suffix"`
			AIM    string `json:"aim"`
			Prefix string `json:"prefix"`
			Chunk  int    `json:"chunk"`
			GapMS  int    `json:"gap_ms"`
		}
		if !decode(w, r, &req) {
			return
		}
		suffix, err := parseSuffix(req.Suffix)
		if err != nil {
			fail(w, http.StatusBadRequest, err)
			return
		}
		err = s.Scanner.Scan(req.Code, ScanOptions{Suffix: suffix, AIM: req.AIM, Prefix: req.Prefix,
			Chunk: req.Chunk, Gap: time.Duration(req.GapMS) * time.Millisecond})
		done(w, err)
	})
	mux.HandleFunc("POST /scanner/noise", func(w http.ResponseWriter, r *http.Request) {
		req := struct {
			Bytes  int    `json:"bytes"`
			Suffix string `json:"suffix"`
		}{Bytes: 32}
		if !decode(w, r, &req) {
			return
		}
		suffix, err := parseSuffix(req.Suffix)
		if err != nil || req.Bytes < 1 || req.Bytes > 65536 {
			fail(w, http.StatusBadRequest, errors.Join(err, errors.New("bytes must be 1 to 65536")))
			return
		}
		done(w, s.Scanner.Noise(req.Bytes, suffix))
	})
	mux.HandleFunc("GET /scanner", func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusOK, map[string]any{"triggers": s.Scanner.Triggers()})
	})
	mux.HandleFunc("GET /display", func(w http.ResponseWriter, r *http.Request) {
		sc := s.Display.Screen()
		reply(w, http.StatusOK, map[string]any{"lines": sc[:], "brightness": s.Display.Brightness(), "text": s.Display.Text()})
	})
	mux.HandleFunc("POST /printer/state", func(w http.ResponseWriter, r *http.Request) {
		req := struct {
			State string `json:"state"`
			On    *bool  `json:"on"`
		}{}
		if !decode(w, r, &req) {
			return
		}
		on := req.On == nil || *req.On
		p := s.Printer
		switch req.State {
		case "paper-near-end":
			p.PaperNearEnd(on)
		case "paper-out":
			p.PaperOut(on)
		case "offline":
			p.Offline(on)
		case "cover-open":
			p.CoverOpen(on)
		case "silent":
			p.Silent(on)
		case "ok":
			p.PaperNearEnd(false)
			p.PaperOut(false)
			p.Offline(false)
			p.CoverOpen(false)
			p.Silent(false)
		default:
			fail(w, http.StatusBadRequest, fmt.Errorf("state %q: want paper-near-end, paper-out, offline, cover-open, silent or ok", req.State))
			return
		}
		done(w, nil)
	})
	mux.HandleFunc("GET /printer/jobs", func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusOK, map[string]any{"jobs": s.Printer.Jobs()})
	})
	mux.HandleFunc("POST /{device}/unplug", func(w http.ResponseWriter, r *http.Request) {
		req := struct {
			DownMS int `json:"down_ms"`
		}{DownMS: 500}
		if !decode(w, r, &req) {
			return
		}
		down := time.Duration(req.DownMS) * time.Millisecond
		if req.DownMS < 0 {
			down = -1
		}
		s.deviceOp(w, r.PathValue("device"), func(name string) error { return s.Unplug(name, down) })
	})
	mux.HandleFunc("POST /{device}/plug", func(w http.ResponseWriter, r *http.Request) {
		s.deviceOp(w, r.PathValue("device"), s.Plug)
	})
	s.tcpRoutes(mux) // tcp.go
	s.ledRoutes(mux) // led8.go
	return mux
}

// DeviceState is how a device is plugged now.
type DeviceState struct {
	Link    string `json:"link"`
	TTY     string `json:"tty"` // "" while unplugged
	Plugged bool   `json:"plugged"`
	Plugs   int    `json:"plugs"` // ptys it has had: 1 + replugs
}

// Devices returns the state of each device by name.
func (s *Sim) Devices() map[string]DeviceState {
	out := map[string]DeviceState{}
	for _, n := range s.Names() {
		l := s.devices[n].link
		tty := l.TTY()
		out[n] = DeviceState{Link: l.Path, TTY: tty, Plugged: tty != "", Plugs: l.Plugs()}
	}
	return out
}

func (s *Sim) deviceOp(w http.ResponseWriter, name string, op func(string) error) {
	if _, ok := s.devices[name]; !ok {
		fail(w, http.StatusNotFound, fmt.Errorf("no device %q: want %s", name, strings.Join(s.Names(), ", ")))
		return
	}
	done(w, op(name))
}

func parseSuffix(s string) (scanner.Suffix, error) {
	if s == "" {
		return scanner.SuffixCR, nil
	}
	return scanner.ParseSuffix(s)
}

// decode reads an optional JSON body into v (unknown fields refused).
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		fail(w, http.StatusBadRequest, fmt.Errorf("request body: %w", err))
		return false
	}
	return true
}

func done(w http.ResponseWriter, err error) {
	if err != nil {
		fail(w, http.StatusConflict, err)
		return
	}
	reply(w, http.StatusOK, map[string]bool{"ok": true})
}

func fail(w http.ResponseWriter, status int, err error) {
	reply(w, status, map[string]string{"error": err.Error()})
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// removeIfSame removes file if it still holds content: a simulator started later on the
// same directory has written its own address there, which stays.
func removeIfSame(file string, content []byte) {
	if got, err := os.ReadFile(file); err == nil && bytes.Equal(got, content) {
		os.Remove(file)
	}
}
