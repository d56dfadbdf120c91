package serial

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

// TestPort_LogKeysOnce: the port's event log lines never repeat a key, also under a
// logger that already carries "device" (as the agent's does).
func TestPort_LogKeysOnce(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})).With("device", "printer")
	p := &Port{log: log, loc: Locator{Path: "/dev/ttyUSB0"}}
	p.emit(Event{Kind: RetryFailed, Attempt: 2, Err: errors.New("gone")})
	p.emit(Event{Kind: Disconnected, Name: "/dev/ttyUSB0", Err: errors.New("gone")})
	p.emit(Event{Kind: Connected, Name: "/dev/ttyUSB1", Attempt: 3})
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d log lines, want 3:\n%s", len(lines), buf.String())
	}
	for _, line := range lines {
		dec := json.NewDecoder(strings.NewReader(line))
		dec.Token() // {
		seen := map[string]bool{}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				t.Fatal(err)
			}
			if seen[k.(string)] {
				t.Errorf("key %q twice in %s", k, line)
			}
			seen[k.(string)] = true
			var v json.RawMessage
			if err := dec.Decode(&v); err != nil {
				t.Fatal(err)
			}
		}
	}
}
