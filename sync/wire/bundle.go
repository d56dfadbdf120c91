package wire

// Bundle is what `acquirerd terminals add --bundle FILE` writes and `posagent provision
// --bundle FILE` reads: all a terminal needs to reach its acquirer, in one file (JSON, mode
// 0600: it holds the terminal's secret).
type Bundle struct {
	Terminal    string `json:"terminal"`
	AcquirerURL string `json:"acquirer_url"`
	Secret      string `json:"secret"`           // 64 hex digits: the terminal's key file
	CAPEM       string `json:"ca_pem,omitempty"` // the acquirer's CA (PEM), when it is not publicly trusted
}
