package device

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Event is one entry of the live event stream (GET /v1/events). Type is the SSE event
// name: "payment" (a payment changed; Data is the payment), "scan" (a code was read that
// no payment took: Data says why), "receipt" (printed or failed), "device" (a peripheral
// came or went, the printer's state), "sync" (upload round, declines after upload),
// "acquirer" (online or offline).
type Event struct {
	ID   string    `json:"id"`
	Type string    `json:"type"`
	At   time.Time `json:"at"`
	Data any       `json:"data"`
}

// hub keeps the last events in a ring and fans them out. Event ids are
// "BOOT-N": N counts up from 1 in this run of the agent, BOOT tells runs apart, so a
// client that reconnects with a Last-Event-ID of an earlier run (the agent restarted)
// gets every event still kept instead of a wrong slice.
type hub struct {
	mu    sync.Mutex
	boot  string
	seq   uint64
	ring  []Event // the last len(ring) events, oldest first once full
	start int
	n     int
	subs  map[chan Event]struct{}
	now   func() time.Time
}

func newHub(size int, now func() time.Time) *hub {
	return &hub{boot: strconv.FormatInt(now().UnixMilli(), 36), ring: make([]Event, size), subs: map[chan Event]struct{}{}, now: now}
}

// publish adds an event and sends it to every subscriber; a subscriber too slow to take
// it is dropped (its stream ends; the client reconnects with Last-Event-ID and catches up
// from the ring), so one stuck browser tab never holds up the checkout.
func (h *hub) publish(typ string, data any) Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seq++
	ev := Event{ID: h.boot + "-" + strconv.FormatUint(h.seq, 10), Type: typ, At: h.now().UTC(), Data: data}
	if h.n < len(h.ring) {
		h.ring[(h.start+h.n)%len(h.ring)] = ev
		h.n++
	} else {
		h.ring[h.start] = ev
		h.start = (h.start + 1) % len(h.ring)
	}
	for c := range h.subs {
		select {
		case c <- ev:
		default:
			delete(h.subs, c)
			close(c)
		}
	}
	return ev
}

// subscribe returns the kept events after lastID and a channel of the ones to come.
func (h *hub) subscribe(lastID string) ([]Event, chan Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var after uint64
	if boot, n, ok := strings.Cut(lastID, "-"); ok && boot == h.boot {
		after, _ = strconv.ParseUint(n, 10, 64)
	}
	var missed []Event
	if lastID != "" {
		for i := 0; i < h.n; i++ {
			ev := h.ring[(h.start+i)%len(h.ring)]
			_, n, _ := strings.Cut(ev.ID, "-")
			if seq, _ := strconv.ParseUint(n, 10, 64); seq > after {
				missed = append(missed, ev)
			}
		}
	}
	c := make(chan Event, 256)
	h.subs[c] = struct{}{}
	return missed, c
}

func (h *hub) unsubscribe(c chan Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[c]; ok {
		delete(h.subs, c)
		close(c)
	}
}

// serveSSE streams events as text/event-stream until the client goes or done closes.
// A client reconnecting with Last-Event-ID (header, or last_event_id in the query for
// clients that cannot set it) first gets what it missed.
func (h *hub) serveSSE(w http.ResponseWriter, r *http.Request, done <-chan struct{}) {
	fl, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, "internal", "streaming not supported")
		return
	}
	last := r.Header.Get("Last-Event-ID")
	if last == "" {
		last = r.URL.Query().Get("last_event_id")
	}
	missed, c := h.subscribe(last)
	defer h.unsubscribe(c)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, "retry: 1000\n: posagent events\n\n")
	for _, ev := range missed {
		writeSSE(w, ev)
	}
	fl.Flush()
	keep := time.NewTicker(15 * time.Second)
	defer keep.Stop()
	for {
		select {
		case ev, ok := <-c:
			if !ok {
				return
			}
			writeSSE(w, ev)
			fl.Flush()
		case <-keep.C:
			fmt.Fprint(w, ": keep-alive\n\n")
			fl.Flush()
		case <-r.Context().Done():
			return
		case <-done:
			return
		}
	}
}

func writeSSE(w http.ResponseWriter, ev Event) {
	data, _ := json.Marshal(ev)
	fmt.Fprintf(w, "id: %s\nevent: %s\ndata: %s\n\n", ev.ID, ev.Type, data)
}
