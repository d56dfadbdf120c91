package uplink

import (
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent/sync/acquirer"
	"github.com/posagent/posagent/sync/acquirer/acquirertest"
)

// TestClient_MutualTLS runs the acquirer endpoint behind real TLS on loopback, requiring
// client certificates from a private CA whose CommonName is the signing terminal. Only the
// terminal's own certificate gets through; plain HTTP, no certificate, another terminal's
// certificate, a certificate from another CA and an untrusted server are all refused.
func TestClient_MutualTLS(t *testing.T) {
	e := newEnv(t)
	pki := acquirertest.NewPKI(t, "acquirer")
	other := acquirertest.NewPKI(t, "rogue")
	serverCert, serverKey := pki.Server("acquirer")
	h := acquirer.New(e.store, acquirer.Options{VerifyChain: acquirer.VerifyJournalRecord, RequireClientCert: true})
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{pki.TLSCertificate(serverCert, serverKey)},
		ClientCAs:    pki.Pool(),
		ClientAuth:   tls.RequireAndVerifyClientCert,
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	if !strings.HasPrefix(srv.URL, "https://") {
		t.Fatalf("server URL %s", srv.URL)
	}
	plainURL := "http://" + strings.TrimPrefix(srv.URL, "https://")

	rightCert, rightKey := pki.Client(terminalID)
	wrongCert, wrongKey := pki.Client("T2")
	rogueCert, rogueKey := other.Client(terminalID)

	client := func(url string, o *TLSOptions) *Client {
		t.Helper()
		c := e.client(url)
		c.MaxAttempts, c.Breaker = 1, nil
		c.HTTP.Timeout = 5 * time.Second
		if o != nil {
			if err := c.SetTLS(*o); err != nil {
				t.Fatal(err)
			}
		}
		return c
	}
	transport := func(err error) bool { var te *TransportError; return errors.As(err, &te) }
	status := func(code int) func(error) bool {
		return func(err error) bool { var ae *APIError; return errors.As(err, &ae) && ae.Status == code }
	}
	tests := []struct {
		name    string
		url     string
		opts    *TLSOptions
		refused func(error) bool // nil: accepted
	}{
		{"own certificate", srv.URL, &TLSOptions{CAFile: pki.CAFile, CertFile: rightCert, KeyFile: rightKey}, nil},
		{"plain HTTP", plainURL, nil, status(http.StatusBadRequest)},
		{"no client certificate", srv.URL, &TLSOptions{CAFile: pki.CAFile}, transport},
		{"another terminal's certificate", srv.URL, &TLSOptions{CAFile: pki.CAFile, CertFile: wrongCert, KeyFile: wrongKey}, status(http.StatusForbidden)},
		{"certificate from another CA", srv.URL, &TLSOptions{CAFile: pki.CAFile, CertFile: rogueCert, KeyFile: rogueKey}, transport},
		{"server not trusted", srv.URL, &TLSOptions{CertFile: rightCert, KeyFile: rightKey}, transport},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := client(tt.url, tt.opts).Ping(t.Context())
			switch {
			case tt.refused == nil && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.refused != nil && err == nil:
				t.Fatal("accepted")
			case tt.refused != nil && !tt.refused(err):
				t.Fatalf("refused for the wrong reason: %v", err)
			}
		})
	}

	// The whole sync goes through with the device's certificate.
	e.fill(30)
	s := e.syncer(client(srv.URL, &TLSOptions{CAFile: pki.CAFile, CertFile: rightCert, KeyFile: rightKey}))
	rep, err := s.Once(t.Context())
	if err != nil || rep.Accepted != 30 || rep.Left != 0 {
		t.Fatalf("sync over mTLS: %+v %v", rep, err)
	}
}

func TestClient_SetTLS(t *testing.T) {
	e := newEnv(t)
	pki := acquirertest.NewPKI(t, "acquirer")
	cert, key := pki.Client(terminalID)
	tests := []struct {
		name string
		url  string
		opts TLSOptions
		want string // in the error; "" for none
	}{
		{"https with a CA", "https://acquirer.example", TLSOptions{CAFile: pki.CAFile}, ""},
		{"https with a device certificate", "https://acquirer.example", TLSOptions{CertFile: cert, KeyFile: key}, ""},
		{"plain http", "http://acquirer.example", TLSOptions{CAFile: pki.CAFile}, "https://"},
		{"certificate without its key", "https://acquirer.example", TLSOptions{CertFile: cert}, "both"},
		{"missing CA file", "https://acquirer.example", TLSOptions{CAFile: e.dir + "/nope.pem"}, "no such file"},
		{"CA file without PEM", "https://acquirer.example", TLSOptions{CAFile: e.dir + "/terminal.key"}, "no PEM"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := e.client(tt.url).SetTLS(tt.opts)
			if got := errString(err); (tt.want == "") != (err == nil) || !strings.Contains(got, tt.want) {
				t.Fatalf("got %q, want an error containing %q", got, tt.want)
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
