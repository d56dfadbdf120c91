package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/posagent/posagent/device"
	"github.com/posagent/posagent/drivers/escpos"
	"github.com/posagent/posagent/internal/flock"
)

// agentRunning reports whether an agent holds cfg's journal (its lock), i.e. runs with
// this config and owns the devices.
func agentRunning(cfg device.Config) bool {
	if cfg.Journal == "" {
		return false
	}
	l, err := flock.Acquire(cfg.Journal + ".lock")
	if err != nil {
		return errors.Is(err, flock.ErrLocked)
	}
	l.Release()
	return false
}

// agentDevices asks the running agent for its devices' states (GET /v1/status): the agent
// holds the ports, so doctor cannot open them itself. A check that cannot ask names why.
func (d doctor) agentDevices(ctx context.Context, cfg device.Config) ([]device.DeviceState, error) {
	ctx, cancel := context.WithTimeout(ctx, d.probeTimeout+3*time.Second)
	defer cancel()
	var st struct {
		Devices []device.DeviceState `json:"devices"`
	}
	c := localAPIOf(cfg)
	c.http = &http.Client{}
	if err := c.do(ctx, http.MethodGet, "/v1/status", nil, &st); err != nil {
		return nil, err
	}
	return st.Devices, nil
}

// deviceCheckFromAgent is the check of one device as the running agent reports it.
func deviceCheckFromAgent(name string, states []device.DeviceState) check {
	var s *device.DeviceState
	for i := range states {
		if states[i].Device == name {
			s = &states[i]
		}
	}
	if s == nil || !s.Configured {
		return check{name, verdictSkip, "not configured", ""}
	}
	where := s.Port
	if s.TTY != "" && s.TTY != s.Port {
		where += " (" + s.TTY + ")"
	}
	if !s.Connected {
		detail := where + ": disconnected, says the running agent"
		if s.Error != "" {
			detail += ": " + oneLine(s.Error)
		}
		return check{name, verdictFail, detail, fmt.Sprintf("the %s is unplugged or off: check its cable and power; the agent reconnects on its own ('posagent ports' lists what is attached)", name)}
	}
	if name != "printer" {
		return check{name, verdictOK, where + " connected (running agent)", ""}
	}
	if s.Error != "" {
		return check{name, verdictFail, where + ": " + oneLine(s.Error) + " (running agent)",
			"check the printer's power and devices.printer.baud; a printer without status support cannot be used"}
	}
	return printerStatusCheck(fmt.Sprintf("%s: %s (running agent)", where, s.Status), parsePrinterStatus(s.Status))
}

// parsePrinterStatus reads back escpos.Status.String (the agent's "offline,paper-end").
func parsePrinterStatus(s string) escpos.Status {
	var st escpos.Status
	for _, f := range strings.Split(s, ",") {
		switch f {
		case "offline":
			st.Offline = true
		case "cover-open":
			st.CoverOpen = true
		case "paper-end":
			st.PaperEnd = true
		case "paper-near-end":
			st.PaperNearEnd = true
		case "error":
			st.Error = true
		case "feeding":
			st.FeedButton = true
		}
	}
	return st
}
