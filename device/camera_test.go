package device

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posagent/posagent"
	"github.com/posagent/posagent/qr"
)

func TestConfig_CameraScannerPorts(t *testing.T) {
	tests := []struct {
		port string
		ok   bool
	}{
		{"camera:/dev/video0", true},
		{"camera:046d:0825", true},
		{"frames:/var/lib/posagent/recording", true},
		{"camera:video0", false},
		{"camera:046d", false},
		{"frames:", false},
	}
	for _, tt := range tests {
		t.Run(tt.port, func(t *testing.T) {
			cfg, err := ParseConfig(strings.NewReader(withLine(validYAML, fmt.Sprintf("devices: {scanner: {port: %q}}\n", tt.port))))
			if err != nil {
				t.Fatal(err)
			}
			err = cfg.Validate()
			if got := err == nil; got != tt.ok {
				t.Fatalf("Validate: %v, want ok=%v", err, tt.ok)
			}
			if err != nil && (!errors.Is(err, posagent.ErrInvalidInput) || !strings.Contains(err.Error(), "devices.scanner.port")) {
				t.Errorf("error %v does not name devices.scanner.port or wrap ErrInvalidInput", err)
			}
		})
	}
}

// TestPeripherals_FramesScanner: a frames: recording as devices.scanner.port gives the
// agent's scan loop the code, classified, and the status shows the scanner connected.
func TestPeripherals_FramesScanner(t *testing.T) {
	const wallet = "281234567890123456"
	c, err := qr.Encode(wallet, qr.EncodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for i := 0; i < 3; i++ {
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("%02d.png", i)))
		if err != nil {
			t.Fatal(err)
		}
		var img image.Image = c.Image(4, qr.QuietZone)
		if err := png.Encode(f, img); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	var mu sync.Mutex
	var events []DeviceState
	cfg := DevicesConfig{Scanner: ScannerConfig{Port: "frames:" + dir}}
	d, err := openPeripherals(context.Background(), cfg, slog.New(slog.DiscardHandler), func(s DeviceState) {
		mu.Lock()
		events = append(events, s)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sc, err := d.scanner.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sc.Code != wallet || sc.Classification.Kind != qr.KindWalletCode {
		t.Errorf("got %q (%s), want the wallet code", sc.Code, sc.Classification.Kind)
	}
	st := d.states(ctx, cfg)
	if len(st) == 0 || st[0].Device != "scanner" || !st[0].Connected {
		t.Errorf("states %+v: want the scanner connected", st)
	}
}
