package update

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// HTTPHealth checks the agent through its local API: GET URL (…/v1/status) with the bearer
// token must answer 200 with the status document, its version the one installed, its
// journal readable (no error), and every device that was connected at the Baseline
// connected again.
type HTTPHealth struct {
	URL    string
	Token  string
	Client *http.Client // default: a client with a 2 s timeout per request
	// Devices are the devices that must be connected (Baseline fills it).
	Devices []string
}

// status is the part of the agent's /v1/status document the check reads (device.Status).
type status struct {
	Version string         `json:"version"`
	Journal map[string]any `json:"journal"`
	Devices []struct {
		Device    string `json:"device"`
		Connected bool   `json:"connected"`
	} `json:"devices"`
}

func (h *HTTPHealth) get(ctx context.Context) (status, error) {
	c := h.Client
	if c == nil {
		c = &http.Client{Timeout: 2 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.URL, nil)
	if err != nil {
		return status{}, err
	}
	if h.Token != "" {
		req.Header.Set("Authorization", "Bearer "+h.Token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return status{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return status{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return status{}, fmt.Errorf("GET %s: %s", h.URL, resp.Status)
	}
	var st status
	if err := json.Unmarshal(body, &st); err != nil {
		return status{}, fmt.Errorf("GET %s: not a status document: %v", h.URL, err)
	}
	return st, nil
}

// Baseline records which devices the running agent has connected, so that the check after
// the update asks for the same. An agent that does not answer leaves no baseline.
func (h *HTTPHealth) Baseline(ctx context.Context) error {
	st, err := h.get(ctx)
	if err != nil {
		return err
	}
	h.Devices = nil
	for _, d := range st.Devices {
		if d.Connected {
			h.Devices = append(h.Devices, d.Device)
		}
	}
	return nil
}

// Check is an Applier.Health.
func (h *HTTPHealth) Check(ctx context.Context, version string) error {
	st, err := h.get(ctx)
	if err != nil {
		return err
	}
	if !sameVersion(st.Version, version) {
		return fmt.Errorf("the agent answers as version %q, want %s (the old one still running?)", st.Version, version)
	}
	if st.Journal == nil {
		return fmt.Errorf("the status reports no journal")
	}
	if e, ok := st.Journal["error"]; ok {
		return fmt.Errorf("the journal is not readable: %v", e)
	}
	if _, ok := st.Journal["records"]; !ok {
		return fmt.Errorf("the status reports no journal records")
	}
	conn := map[string]bool{}
	for _, d := range st.Devices {
		conn[d.Device] = d.Connected
	}
	for _, d := range h.Devices {
		if !conn[d] {
			return fmt.Errorf("device %s was connected before the update and is not now", d)
		}
	}
	return nil
}
