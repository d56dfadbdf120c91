package serial

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"
)

// startWatch starts watch when Options.Watch asks for it; Open calls it last.
func (p *Port) startWatch() {
	if p.opt.Watch > 0 {
		p.wg.Add(1)
		go p.watch(p.opt.Watch)
	}
}

// watch checks every d, while connected, that the device node the port was opened through
// is still there, and takes the connection down when it is gone: a port that is only
// written to (a customer display) and rarely at that would otherwise notice an unplug only
// at its next write. It runs until Close.
func (p *Port) watch(d time.Duration) {
	defer p.wg.Done()
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-t.C:
		}
		p.mu.Lock()
		c, gen, name := p.cur, p.gen, p.name
		p.mu.Unlock()
		if c == nil {
			continue
		}
		node := p.loc.Path // the link or node the user named, which udev removes on unplug
		if node == "" {
			node = name
		}
		if _, err := os.Stat(node); errors.Is(err, fs.ErrNotExist) {
			p.lost(gen, fmt.Errorf("%s is gone: %w", node, ErrDisconnected))
		}
	}
}
