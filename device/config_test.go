package device

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/posagent/posagent"
)

const validYAML = `
terminal: T1
state_dir: /tmp/posagent-test
key_file: /tmp/posagent-test/key
api: {listen: "127.0.0.1:7480", token: "0123456789abcdef0123"}
acquirer: {url: "http://127.0.0.1:8443"}
offline: {methods: [emv-cpm], max_count: 5, limits: {CNY: {per_transaction: "100.00", outstanding: "300.00"}}}
`

func TestParseConfig_Valid(t *testing.T) {
	cfg, err := ParseConfig(strings.NewReader(validYAML))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.Offline.Limits["CNY"].PerTransaction, int64(10000); got != want {
		t.Errorf("policy limit %d, want %d", got, want)
	}
	if got, want := cfg.Journal, "/tmp/posagent-test/journal.db"; got != want {
		t.Errorf("journal %q, want %q", got, want)
	}
	if got, want := cfg.Acquirer.AuthTimeout.D().String(), "5s"; got != want {
		t.Errorf("default auth timeout %s, want %s", got, want)
	}
}

func TestParseConfig_Errors(t *testing.T) {
	tests := []struct {
		name, edit, want string
	}{
		{"unknown field", "colour: red\n", "field colour not found"},
		{"bad duration", "acquirer: {url: \"http://a\", auth_timeout: soon}\n", `acquirer.auth_timeout: "soon" is not a duration`},
		{"bad baud", "devices: {printer: {port: /dev/ttyUSB0, baud: 12}}\n", `devices.printer.baud: "12"`},
		{"bad protocol", "devices: {display: {protocol: vfd}}\n", `devices.display.protocol: "vfd"`},
		{"bad profile", "devices: {printer: {profile: nope}}\n", `devices.printer.profile: "nope"`},
		{"bad origin", "api: {listen: \"127.0.0.1:1\", token: \"0123456789abcdef0123\", origins: [\"*\"]}\n", `api.origins[0]: "*"`},
		{"short token", "api: {listen: \"127.0.0.1:1\", token: short}\n", "api.token"},
		{"public listen without TLS", "api: {listen: \"0.0.0.0:7480\", token: \"0123456789abcdef0123\"}\n", `api.listen: "0.0.0.0:7480" is not a loopback address`},
		{"all interfaces without TLS", "api: {listen: \":7480\", token: \"0123456789abcdef0123\"}\n", `api.listen: ":7480" is not a loopback address`},
		{"bad check window", "checkout: {check_window: 1ms}\n", `checkout.check_window: "1ms" is too short`},
		{"bad currency", "checkout: {currency: yuan}\n", `checkout.currency: "yuan"`},
		{"bad policy", "offline: {methods: [cash]}\n", `unknown method "cash"`},
		{"bad url", "acquirer: {url: \"ftp://x\"}\n", `acquirer.url: "ftp://x"`},
		{"bad account", "merchant: {name: SHOP, city: X, country: CN, mcc: \"5411\", accounts: [\"99\"]}\n", "merchant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := ParseConfig(strings.NewReader(withLine(validYAML, tt.edit)))
			if err == nil {
				err = cfg.Validate()
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
			if !errors.Is(err, posagent.ErrInvalidInput) {
				t.Errorf("%v does not wrap ErrInvalidInput", err)
			}
		})
	}
}

func TestConfig_ApplyEnv(t *testing.T) {
	cfg, err := ParseConfig(strings.NewReader(validYAML))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"POSAGENT_API_TOKEN": "from-the-environment-123", "POSAGENT_ACQUIRER": "https://acq.example", "POSAGENT_KEY_FILE": "/run/secrets/key"}
	cfg.ApplyEnv(func(k string) string { return env[k] })
	if cfg.API.Token != env["POSAGENT_API_TOKEN"] || cfg.Acquirer.URL != env["POSAGENT_ACQUIRER"] || cfg.KeyFile != env["POSAGENT_KEY_FILE"] {
		t.Errorf("env not applied: %+v", cfg)
	}
}

func TestLoadConfig_Examples(t *testing.T) {
	for _, name := range []string{"demo.yaml"} {
		path := filepath.Join("..", "configs", name)
		if _, err := os.Stat(path); err != nil {
			t.Skip(err)
		}
		env := map[string]string{"POSAGENT_API_TOKEN": "demo-token-0123456789"}
		if _, err := LoadConfig(path, func(k string) string { return env[k] }); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// withLine replaces the top-level line of the same key in doc with line (or appends it).
func withLine(doc, line string) string {
	key, _, _ := strings.Cut(line, ":")
	var out []string
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(l, key+":") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n") + line
}

// TestConfig_PortForms: every transport's port form is accepted for the roles it serves,
// and refused, naming the field, for the others.
func TestConfig_PortForms(t *testing.T) {
	good := `devices:
  printer: {port: "tcp:192.168.1.87", profile: generic-80}
  scanner: {port: "hid:0c2e:0200"}
  display: {port: /dev/ttyUSB0, baud: 2400, protocol: led8}
`
	for _, devs := range []string{good,
		"devices: {printer: {port: \"usblp:/dev/usb/lp0\"}, scanner: {port: \"hid:name=Honeywell\"}, display: {port: \"tcp:10.0.0.9:4001\"}}\n",
		"devices: {printer: {port: \"usblp:0fe6:811e\", baud: 0}, scanner: {port: \"hid:/dev/input/event3\"}}\n",
	} {
		cfg, err := ParseConfig(strings.NewReader(validYAML + devs))
		if err == nil {
			err = cfg.Validate()
		}
		if err != nil {
			t.Errorf("%s: %v", devs, err)
		}
	}
	for _, tc := range []struct{ devs, want string }{
		{"devices: {printer: {port: \"hid:/dev/input/event3\"}}\n", `devices.printer.port: "hid:/dev/input/event3"`},
		{"devices: {scanner: {port: \"usblp:/dev/usb/lp0\"}}\n", `devices.scanner.port: "usblp:/dev/usb/lp0"`},
		{"devices: {scanner: {port: \"tcp:10.0.0.1\"}}\n", `devices.scanner.port: "tcp:10.0.0.1"`},
		{"devices: {printer: {port: \"tcp:host:99999\"}}\n", `devices.printer.port: "tcp:host:99999"`},
		{"devices: {scanner: {port: \"hid:bogus\"}}\n", `devices.scanner.port: "hid:bogus"`},
		{"devices: {display: {port: \"usblp:/dev/usb/lp0\"}}\n", `devices.display.port`},
	} {
		cfg, err := ParseConfig(strings.NewReader(validYAML + tc.devs))
		if err == nil {
			err = cfg.Validate()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one naming %s", tc.devs, err, tc.want)
		}
	}
}
