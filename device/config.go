package device

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/posagent/posagent"
	"github.com/posagent/posagent/drivers/camera"
	"github.com/posagent/posagent/drivers/display"
	"github.com/posagent/posagent/drivers/escpos"
	"github.com/posagent/posagent/drivers/ports"
	"github.com/posagent/posagent/drivers/scanner"
	"github.com/posagent/posagent/offline"
	"github.com/posagent/posagent/qr"
)

// Config is the agent's configuration: the YAML file of `posagent run --config FILE`
// (configs/demo.yaml is an annotated example), then the environment overrides, then
// Validate. Durations are Go durations ("5s", "2m"); amounts in the offline policy are
// decimals in the currency's major unit.
type Config struct {
	// Terminal is this terminal's id at the acquirer (POSAGENT_TERMINAL).
	Terminal string `yaml:"terminal"`
	// StateDir holds the journal and the agent's payment store (POSAGENT_STATE_DIR).
	StateDir string `yaml:"state_dir"`
	// Journal is the journal's file (POSAGENT_JOURNAL); default STATE_DIR/journal.db.
	Journal string `yaml:"journal"`
	// KeyFile is the terminal's provisioned secret (POSAGENT_KEY_FILE); CreateKey makes a
	// fresh one when it is missing (development only).
	KeyFile   string `yaml:"key_file"`
	CreateKey bool   `yaml:"create_key"`

	API      APIConfig      `yaml:"api"`
	Acquirer AcquirerConfig `yaml:"acquirer"`
	Devices  DevicesConfig  `yaml:"devices"`
	Checkout CheckoutConfig `yaml:"checkout"`
	Merchant MerchantConfig `yaml:"merchant"`
	// Offline is the offline risk policy (offline.Policy's YAML shape).
	Offline offline.Policy `yaml:"offline"`
	// Maintenance keeps the journal bounded on the terminal's flash.
	Maintenance MaintenanceConfig `yaml:"maintenance"`
	Log         LogConfig         `yaml:"log"`
}

// MaintenanceConfig is the journal's upkeep: records the acquirer holds, in a final state,
// older than Retention are purged (the chain keeps an anchor), and the WAL is checkpointed,
// every Interval.
type MaintenanceConfig struct {
	Retention Duration `yaml:"retention"` // default 30 days
	Interval  Duration `yaml:"interval"`  // default 1 hour
}

// APIConfig is the local API for the POS app.
type APIConfig struct {
	// Listen is the address; loopback by default, because the API moves money.
	Listen string `yaml:"listen"` // POSAGENT_LISTEN
	// Token is the bearer token the POS app sends (POSAGENT_API_TOKEN). Required.
	Token string `yaml:"token"`
	// TechnicianToken signs technicians in to the status page (/status); not the POS
	// app's token (POSAGENT_TECHNICIAN_TOKEN). Empty: the page is off.
	TechnicianToken string `yaml:"technician_token"`
	// Origins are the web origins allowed by CORS ("https://pos.example.com"); "*" is refused.
	Origins []string `yaml:"origins"`
	// TLSCert and TLSKey turn on HTTPS on localhost.
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
}

// AcquirerConfig is the uplink.
type AcquirerConfig struct {
	URL string `yaml:"url"` // POSAGENT_ACQUIRER
	// AuthTimeout is how long a customer waits for an online authorization before the
	// sale follows the offline policy.
	AuthTimeout  Duration `yaml:"auth_timeout"`
	PingInterval Duration `yaml:"ping_interval"`
	SyncInterval Duration `yaml:"sync_interval"`
	// RequestTimeout bounds one HTTP request of the uplink.
	RequestTimeout Duration `yaml:"request_timeout"`
}

// DevicesConfig names the peripherals; any may be left out (port empty).
type DevicesConfig struct {
	Scanner ScannerConfig `yaml:"scanner"`
	Printer PrinterConfig `yaml:"printer"`
	Display DisplayConfig `yaml:"display"`
}

// ScannerConfig is the scanner's port and framing.
type ScannerConfig struct {
	Port   string `yaml:"port"` // path, by-id name, VID:PID[:SERIAL], or hid:/dev/input/eventN|VID:PID|name=TEXT
	Baud   int    `yaml:"baud"`
	Suffix string `yaml:"suffix"` // cr, lf, crlf, tab, none
	Prefix string `yaml:"prefix"`
}

// PrinterConfig is the receipt printer.
type PrinterConfig struct {
	Port       string `yaml:"port"` // serial (path, by-id name, VID:PID), tcp:HOST[:PORT] or usblp:/dev/usb/lpN|VID:PID
	Baud       int    `yaml:"baud"`
	Profile    string `yaml:"profile"`
	ProfileDir string `yaml:"profile_dir"`
}

// DisplayConfig is the customer display.
type DisplayConfig struct {
	Port     string `yaml:"port"`
	Baud     int    `yaml:"baud"`
	Protocol string `yaml:"protocol"` // cd5220, epson or led8
}

// CheckoutConfig tunes the checkout flow.
type CheckoutConfig struct {
	Currency string `yaml:"currency"` // default currency of a payment without one
	// ScanTimeout is how long a customer-presented payment waits for a code.
	ScanTimeout Duration `yaml:"scan_timeout"`
	// QRTimeout is how long a merchant-presented payment waits for the customer to pay.
	QRTimeout Duration `yaml:"qr_timeout"`
	// OrderPoll is how often the order's status is asked while the customer pays.
	OrderPoll Duration `yaml:"order_poll"`
	// CheckWindow is how long an authorization whose answer was lost or late is queried
	// at the acquirer before the agent reverses it (the payment then fails: no money
	// taken). PendingWindow is how long a customer confirming in the wallet is waited for.
	CheckWindow   Duration `yaml:"check_window"`
	PendingWindow Duration `yaml:"pending_window"`
	// QRSlip prints the merchant-presented code on a slip (the display has no pixels).
	QRSlip bool `yaml:"qr_slip"`
	// Receipts printed on approval.
	MerchantCopy bool `yaml:"merchant_copy"`
	CustomerCopy bool `yaml:"customer_copy"`
}

// MerchantConfig is what the receipts and the merchant-presented codes say.
type MerchantConfig struct {
	Name    string `yaml:"name"` // ASCII, at most 25 characters (EMV tag 59)
	City    string `yaml:"city"`
	Country string `yaml:"country"`
	MCC     string `yaml:"mcc"`
	// Accounts are EMV merchant account objects, "26=D15600000000,05=A93FO3230Q".
	Accounts []string `yaml:"accounts"`
	Header   []string `yaml:"header"`
	Footer   []string `yaml:"footer"`
}

// LogConfig selects the log format: json for machines, text for people, auto (text on a
// terminal, else JSON).
type LogConfig struct {
	Format string `yaml:"format"`
	Level  string `yaml:"level"` // debug, info, warn, error
}

// Duration is a time.Duration written as "5s" in YAML. A value that is not a duration is
// kept and reported by Validate, which knows the field's name.
type Duration struct {
	v   time.Duration
	bad string
}

// Dur makes a Duration.
func Dur(d time.Duration) Duration { return Duration{v: d} }

// UnmarshalYAML reads a Go duration.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil || v < 0 || n.Kind != yaml.ScalarNode {
		*d = Duration{bad: n.Value}
		if d.bad == "" {
			d.bad = "(not a scalar)"
		}
		return nil
	}
	*d = Duration{v: v}
	return nil
}

// D returns the time.Duration.
func (d Duration) D() time.Duration { return d.v }

// DefaultConfig is the configuration before the file: every default in one place.
func DefaultConfig() Config {
	return Config{
		StateDir: "/var/lib/posagent",
		KeyFile:  "/etc/posagent/key",
		API:      APIConfig{Listen: "127.0.0.1:7480"},
		Acquirer: AcquirerConfig{
			AuthTimeout: Dur(5 * time.Second), PingInterval: Dur(10 * time.Second),
			SyncInterval: Dur(30 * time.Second), RequestTimeout: Dur(10 * time.Second),
		},
		Devices: DevicesConfig{
			Scanner: ScannerConfig{Baud: 9600, Suffix: "cr"},
			Printer: PrinterConfig{Baud: 9600, Profile: "generic-58"},
			Display: DisplayConfig{Baud: 9600, Protocol: "cd5220"},
		},
		Checkout: CheckoutConfig{
			Currency: "CNY", ScanTimeout: Dur(60 * time.Second), QRTimeout: Dur(120 * time.Second),
			OrderPoll: Dur(time.Second), QRSlip: true, CustomerCopy: true,
			CheckWindow: Dur(30 * time.Second), PendingWindow: Dur(60 * time.Second),
		},
		Offline:     offline.DefaultPolicy(),
		Maintenance: MaintenanceConfig{Retention: Dur(offline.DefaultRetention), Interval: Dur(time.Hour)},
		Log:         LogConfig{Format: "auto", Level: "info"},
	}
}

// ConfigError is a configuration problem: the field (its YAML path) and the bad value.
type ConfigError struct {
	Field, Value, Problem string
}

func (e *ConfigError) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("config: %s: %s", e.Field, e.Problem)
	}
	return fmt.Sprintf("config: %s: %q %s", e.Field, e.Value, e.Problem)
}

// Unwrap returns posagent.ErrInvalidInput.
func (e *ConfigError) Unwrap() error { return posagent.ErrInvalidInput }

// ParseConfig reads the YAML over DefaultConfig. Unknown fields are errors.
func ParseConfig(r io.Reader) (Config, error) {
	cfg := DefaultConfig()
	data, err := io.ReadAll(io.LimitReader(r, 1<<20))
	if err != nil {
		return cfg, fmt.Errorf("read config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		if errors.Is(err, posagent.ErrInvalidInput) {
			return cfg, fmt.Errorf("config: %w", err)
		}
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		msg = strings.TrimPrefix(msg, "unmarshal errors:")
		return cfg, posagent.Invalidf("config: %s", strings.Join(strings.Fields(msg), " "))
	}
	return cfg, nil
}

// LoadConfig reads the file, applies the environment (getenv, os.Getenv when nil) and
// validates the result.
func LoadConfig(path string, getenv func(string) string) (Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return Config{}, fmt.Errorf("open config: %w", err)
	}
	defer f.Close()
	cfg, err := ParseConfig(f)
	if err != nil {
		return cfg, fmt.Errorf("%s: %w", path, err)
	}
	cfg.ApplyEnv(getenv)
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// ApplyEnv overrides secrets and paths from the environment: POSAGENT_API_TOKEN,
// POSAGENT_KEY_FILE, POSAGENT_JOURNAL, POSAGENT_STATE_DIR, POSAGENT_ACQUIRER,
// POSAGENT_TERMINAL, POSAGENT_LISTEN. Secrets belong in the environment (or a file only
// root reads), not in a config that is copied around.
func (c *Config) ApplyEnv(getenv func(string) string) {
	if getenv == nil {
		getenv = os.Getenv
	}
	for _, o := range []struct {
		name string
		dst  *string
	}{
		{"POSAGENT_API_TOKEN", &c.API.Token}, {"POSAGENT_KEY_FILE", &c.KeyFile}, {"POSAGENT_JOURNAL", &c.Journal},
		{"POSAGENT_STATE_DIR", &c.StateDir}, {"POSAGENT_ACQUIRER", &c.Acquirer.URL}, {"POSAGENT_TERMINAL", &c.Terminal},
		{"POSAGENT_LISTEN", &c.API.Listen}, {"POSAGENT_TECHNICIAN_TOKEN", &c.API.TechnicianToken},
	} {
		if v := getenv(o.name); v != "" {
			*o.dst = v
		}
	}
}

// Validate checks every field; the error names the field and the bad value.
func (c *Config) Validate() error {
	bad := func(field, value, problem string) error { return &ConfigError{field, value, problem} }
	if c.Terminal == "" || len(c.Terminal) > 64 || strings.ContainsAny(c.Terminal, "/ \t\n") {
		return bad("terminal", c.Terminal, "must be 1-64 characters without '/' or spaces (the id the acquirer knows)")
	}
	if c.StateDir == "" {
		return bad("state_dir", "", "is required")
	}
	if c.Journal == "" {
		c.Journal = filepath.Join(c.StateDir, "journal.db")
	}
	if c.KeyFile == "" {
		return bad("key_file", "", "is required (the terminal's provisioned secret)")
	}
	host, _, err := net.SplitHostPort(c.API.Listen)
	if err != nil {
		return bad("api.listen", c.API.Listen, "is not host:port")
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) && c.API.TLSCert == "" {
		return bad("api.listen", c.API.Listen, "is not a loopback address: the API moves money, so listening beyond this machine needs api.tls_cert and api.tls_key")
	}
	if len(c.API.Token) < 16 {
		return bad("api.token", "", "must be at least 16 characters (set it in POSAGENT_API_TOKEN)")
	}
	if t := c.API.TechnicianToken; t != "" && (len(t) < 16 || t == c.API.Token) {
		return bad("api.technician_token", "", "must be at least 16 characters and differ from api.token (set it in POSAGENT_TECHNICIAN_TOKEN)")
	}
	for i, o := range c.API.Origins {
		u, err := url.Parse(o)
		if o == "*" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" {
			return bad(fmt.Sprintf("api.origins[%d]", i), o, "must be an origin like https://pos.example.com (no wildcard, no path)")
		}
	}
	if (c.API.TLSCert == "") != (c.API.TLSKey == "") {
		return bad("api.tls_cert", c.API.TLSCert, "and api.tls_key go together")
	}
	if c.Acquirer.URL == "" {
		return bad("acquirer.url", "", "is required (or POSAGENT_ACQUIRER)")
	}
	if u, err := url.Parse(c.Acquirer.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return bad("acquirer.url", c.Acquirer.URL, "is not an http(s) URL")
	}
	for _, d := range []struct {
		name string
		v    Duration
		min  time.Duration
	}{
		{"acquirer.auth_timeout", c.Acquirer.AuthTimeout, 100 * time.Millisecond}, {"acquirer.ping_interval", c.Acquirer.PingInterval, 100 * time.Millisecond},
		{"acquirer.sync_interval", c.Acquirer.SyncInterval, 100 * time.Millisecond}, {"acquirer.request_timeout", c.Acquirer.RequestTimeout, 100 * time.Millisecond},
		{"checkout.scan_timeout", c.Checkout.ScanTimeout, time.Second}, {"checkout.qr_timeout", c.Checkout.QRTimeout, time.Second},
		{"checkout.order_poll", c.Checkout.OrderPoll, 50 * time.Millisecond},
		{"checkout.check_window", c.Checkout.CheckWindow, 500 * time.Millisecond}, {"checkout.pending_window", c.Checkout.PendingWindow, 500 * time.Millisecond},
		{"maintenance.retention", c.Maintenance.Retention, time.Minute}, {"maintenance.interval", c.Maintenance.Interval, time.Second},
	} {
		if d.v.bad != "" {
			return bad(d.name, d.v.bad, "is not a duration like 5s or 2m")
		}
		if d.v.D() < d.min {
			return bad(d.name, d.v.D().String(), "is too short (at least "+d.min.String()+")")
		}
	}
	for _, p := range []struct {
		name, port string
		baud       int
	}{{"devices.scanner", c.Devices.Scanner.Port, c.Devices.Scanner.Baud}, {"devices.printer", c.Devices.Printer.Port, c.Devices.Printer.Baud},
		{"devices.display", c.Devices.Display.Port, c.Devices.Display.Baud}} {
		if p.port == "" {
			continue
		}
		if p.name == "devices.scanner" && camera.IsPort(p.port) {
			if err := validCameraPort(p.port); err != nil {
				return bad(p.name+".port", p.port, "is not camera:/dev/videoN, camera:VID:PID or frames:DIR")
			}
			continue
		}
		role := strings.TrimPrefix(p.name, "devices.")
		if err := ports.Validate(role, p.port); err != nil {
			return bad(p.name+".port", p.port, portForms(role))
		}
		if ports.KindOf(p.port) == ports.Serial && (p.baud < 300 || p.baud > 921600) {
			return bad(p.name+".baud", fmt.Sprint(p.baud), "is not a serial line speed (300 to 921600)")
		}
	}
	if _, err := scanner.ParseSuffix(c.Devices.Scanner.Suffix); err != nil {
		return bad("devices.scanner.suffix", c.Devices.Scanner.Suffix, "must be cr, lf, crlf, tab or none")
	}
	if _, err := display.ParseProtocol(c.Devices.Display.Protocol); err != nil {
		return bad("devices.display.protocol", c.Devices.Display.Protocol, "must be cd5220, epson or led8")
	}
	if _, err := escpos.LoadProfile(c.Devices.Printer.Profile, c.Devices.Printer.ProfileDir); err != nil {
		return bad("devices.printer.profile", c.Devices.Printer.Profile, "is not a printer profile ("+strings.Join(escpos.ProfileNames(c.Devices.Printer.ProfileDir), ", ")+")")
	}
	if cur, err := posagent.LookupCurrency(c.Checkout.Currency); err != nil || cur.Code != c.Checkout.Currency {
		return bad("checkout.currency", c.Checkout.Currency, "is not an ISO 4217 alphabetic code like CNY")
	}
	if c.Merchant.Name != "" || len(c.Merchant.Accounts) > 0 {
		if _, err := c.merchantCode(posagent.Amount{Minor: 100, Currency: mustCurrency(c.Checkout.Currency)}, "CHECK"); err != nil {
			return bad("merchant", "", err.Error())
		}
	}
	switch c.Log.Format {
	case "auto", "json", "text":
	default:
		return bad("log.format", c.Log.Format, "must be auto, json or text")
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return bad("log.level", c.Log.Level, "must be debug, info, warn or error")
	}
	return nil
}

// merchantCode builds the dynamic merchant-presented payload for one payment (strict,
// through qr.BuildMPM): the amount and the order reference (62/05).
func (c *Config) merchantCode(a posagent.Amount, reference string) (string, error) {
	m := c.Merchant
	if m.Name == "" || m.City == "" || m.Country == "" || m.MCC == "" || len(m.Accounts) == 0 {
		return "", errors.New("merchant-presented codes need merchant.name, city, country, mcc and accounts")
	}
	code := qr.MerchantCode{
		Name: m.Name, City: m.City, Country: m.Country, MCC: m.MCC, Currency: a.Currency.Numeric,
		Amount: a.String(), Dynamic: true,
		Additional: []qr.Object{{ID: "05", Value: reference, Offset: -1}},
	}
	if t := c.Terminal; t != "" && len(t) <= 25 {
		code.Additional = append(code.Additional, qr.Object{ID: "07", Value: t, Offset: -1})
	}
	for i, s := range m.Accounts {
		o, err := qr.ParseAccount(s)
		if err != nil {
			return "", fmt.Errorf("accounts[%d] %q: %v", i, s, err)
		}
		code.Accounts = append(code.Accounts, o)
	}
	return qr.BuildMPM(code.Objects())
}

func mustCurrency(code string) posagent.Currency {
	c, _ := posagent.LookupCurrency(code)
	return c
}

// portForms lists the port forms a role takes, for validation messages.
func portForms(role string) string {
	switch role {
	case "printer":
		return "is not a serial port (path, by-id name or VID:PID), tcp:HOST[:PORT] or usblp:/dev/usb/lpN|VID:PID"
	case "scanner":
		return "is not a serial port (path, by-id name or VID:PID), hid:/dev/input/eventN|VID:PID|name=TEXT, camera:/dev/videoN|VID:PID or frames:DIR"
	}
	return "is not a path, by-id name, VID:PID or tcp:HOST[:PORT]"
}
