package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/posagent/posagent/device"
)

// localAPI is a client of the running agent's local API, for the commands a technician
// runs beside it (refund, report): the address and token come from the agent's config
// (--config, or POSAGENT_CONFIG) with the same environment overrides the agent applies
// (POSAGENT_API_TOKEN, POSAGENT_LISTEN).
type localAPI struct {
	base  string
	token string
	http  *http.Client
}

// newLocalAPI reads the agent's config and returns a client of its API.
func newLocalAPI(configPath string) (*localAPI, error) {
	if configPath == "" {
		return nil, usageError{errors.New("needs the agent's --config FILE (or POSAGENT_CONFIG): its api.listen and api.token")}
	}
	cfg, err := loadConfig(configPath)
	if err != nil {
		return nil, withHint(invalid(err), "give the config the agent runs with")
	}
	return localAPIOf(cfg), nil
}

// localAPIOf is a client of the API the agent with cfg serves.
func localAPIOf(cfg device.Config) *localAPI {
	scheme, client := "http", &http.Client{Timeout: 30 * time.Second}
	if cfg.API.TLSCert != "" {
		scheme = "https"
	}
	host, port, _ := net.SplitHostPort(cfg.API.Listen)
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return &localAPI{base: scheme + "://" + net.JoinHostPort(host, port), token: cfg.API.Token, http: client}
}

// apiCallError is an error answer of the local API.
type apiCallError struct {
	Status        int
	Code, Message string
}

func (e *apiCallError) Error() string { return e.Message + " (" + e.Code + ")" }

// do sends a JSON request and decodes a 2xx answer into out.
func (c *localAPI) do(ctx context.Context, method, path string, body, out any) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, r)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return withHint(fmt.Errorf("the agent's API at %s does not answer: %w", c.base, errors.Unwrap(err)), "is 'posagent run' running with this config?")
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("read the agent's answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		var eb struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		ae := &apiCallError{Status: resp.StatusCode, Code: fmt.Sprintf("http_%d", resp.StatusCode), Message: strings.TrimSpace(string(data))}
		if json.Unmarshal(data, &eb) == nil && eb.Error.Code != "" {
			ae.Code, ae.Message = eb.Error.Code, eb.Error.Message
		}
		if resp.StatusCode == http.StatusUnauthorized {
			return withHint(ae, "the token is the agent's api.token (or POSAGENT_API_TOKEN)")
		}
		return ae
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(data, out)
}
