package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The agent's timings in this test (short, so that the windows end within the test).
const (
	authTimeout   = 1500 * time.Millisecond
	checkWindow   = 4 * time.Second
	pendingWindow = 3 * time.Second
	reqTimeout    = time.Second
	simDelay      = 2500 * time.Millisecond // 95: approved after the client's timeout, inside the check window
	simPending    = time.Second             // 96, 97
	// openBound is how long a payment may stay open after the agent (re)started with it:
	// the longest path (an authorization that hangs, then the check window, then the
	// reversal) plus a generous margin for a loaded 2-core machine.
	// budget bounds the test's time: no payment starts after it (when minPayments are
	// done), so that the whole test stays well under 90 s on a 2-core machine whatever
	// the build took and whichever slow paths the dice chose.
	budget      = 60 * time.Second
	minPayments = 10
	openBound   = authTimeout + checkWindow + pendingWindow + 2*reqTimeout + 4*time.Second
)

const agentConfig = `terminal: T1
state_dir: ./state
key_file: ./terminal.key
api:
  listen: 127.0.0.1:0
acquirer:
  url: http://127.0.0.1:1
  auth_timeout: 1500ms
  ping_interval: 200ms
  sync_interval: 300ms
  request_timeout: 1s
devices:
  scanner: {port: ./sim/scanner, baud: 9600, suffix: cr}
  printer: {port: ./sim/printer, baud: 115200, profile: generic-58}
  display: {port: ./sim/display, baud: 9600, protocol: cd5220}
checkout:
  currency: CNY
  scan_timeout: 60s
  order_poll: 100ms
  check_window: 4s
  pending_window: 3s
  qr_slip: false
  customer_copy: true
merchant:
  name: CORNER SHOP
  city: BEIJING
  country: CN
  mcc: "5411"
  accounts: ["26=D15600000000,05=A93FO3230Q"]
offline:
  methods: [emv-cpm]
  max_count: 10
  limits:
    CNY: {per_transaction: "500.00", outstanding: "1000.00"}
log:
  format: json
  level: debug
`

// A simulated acquirer outcome, chosen by the amount's last two digits.
type path struct {
	suffix int64
	name   string
	want   string // the final state when the agent is not killed
}

var paths = []path{
	{94, "approved, answer lost", "approved"},
	{95, "approved after the client's timeout", "approved"},
	{96, "pending, customer confirms", "approved"},
	{97, "pending, customer declines", "declined"},
	{98, "pending until reversed", "failed"},
	{99, "approved, then 502", "approved"},
	{91, "hangs, then 503", "failed"},
	{51, "declined", "declined"},
	{0, "approved", "approved"},
}

// When the agent is SIGKILLed during a payment.
const (
	killNone        = "none"
	killAfterScan   = "after-scan"  // 0-150 ms after the scanner sent the code
	killAuthorizing = "authorizing" // as soon as the API says authorizing
	killOpen        = "open"        // a random moment while checking or pending_customer
	killTwice       = "open-twice"  // the same, and again after the restart
	killFinal       = "after-final" // right after the final state (a reversal may be unacknowledged)
)

var killPlans = []struct {
	plan   string
	weight int
}{{killNone, 30}, {killAfterScan, 15}, {killAuthorizing, 10}, {killOpen, 25}, {killTwice, 8}, {killFinal, 12}}

type errInfo struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// payment is what the test reads of a payment at the agent's API.
type payment struct {
	ID             string   `json:"id"`
	State          string   `json:"state"`
	Amount         int64    `json:"amount"`
	SaleID         string   `json:"sale_id"`
	IdempotencyKey string   `json:"idempotency_key"`
	Error          *errInfo `json:"error"`
}

func (p *payment) code() string {
	if p.Error == nil {
		return ""
	}
	return p.Error.Code
}

var finalStates = []string{"approved", "declined", "failed", "canceled", "stored"}

func isFinal(state string) bool { return slices.Contains(finalStates, state) }

// sale is the test's record of one payment.
type sale struct {
	n       int
	path    path
	key     string
	amount  int64
	id      string
	saleID  string
	plan    string
	kills   []string // the state the API last said when each kill happened
	states  []string // the states seen, in order, without repeats
	final   string
	code    string
	openAt  time.Time // first seen checking or pending_customer
	openIn  string    // which of the two
	doneAt  time.Time
	started time.Time // the agent's last (re)start while this payment was open
	maxOpen time.Duration
	ledger  string // what the acquirer's ledger says, at the end
}

func (s *sale) see(state string) {
	if len(s.states) == 0 || s.states[len(s.states)-1] != state {
		s.states = append(s.states, state)
	}
}

func (s *sale) String() string {
	return fmt.Sprintf("#%d %s amount %d (%s) payment %s sale %s: plan %s, killed at %v, states %v, final %s %s; ledger %s",
		s.n, s.key, s.amount, s.path.name, s.id, s.saleID, s.plan, s.kills, s.states, s.final, s.code, s.ledger)
}

// TestMoneyMovesExactlyOnce_SIGKILL takes wallet payments through every simulated way an
// online authorization can be lost, late, pending or refused, with the real binaries as
// separate processes (acquirerd on SQLite, possim, posagent run), and SIGKILLs the agent
// at random moments: right after the scan, while authorizing, while checking or waiting
// for the customer (sometimes twice), right after the outcome, or not at all. After each
// kill the agent is started again and the POS app retries its request with the same
// idempotency key. At the end every payment must be final at the counter, no reversal
// may be left unacknowledged, and the acquirer's ledger must agree with the counter for
// every payment: approved ⇔ captured the amount; anything else ⇒ nothing captured.
func TestMoneyMovesExactlyOnce_SIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds the binaries and SIGKILLs the agent for about a minute (run without -short)")
	}
	n := 24
	if v, err := strconv.Atoi(os.Getenv("POSAGENT_E2E_PAYMENTS")); err == nil && v > 0 {
		n = v
	}
	seed := uint64(time.Now().UnixNano())
	if v, err := strconv.ParseUint(os.Getenv("POSAGENT_E2E_SEED"), 10, 64); err == nil {
		seed = v
	}
	t.Logf("seed %d (POSAGENT_E2E_SEED=%d repeats the choices), %d payments", seed, seed, n)
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	began := time.Now()

	bin := buildBinaries(t)
	st := newStack(t, bin, acqOptions{SimDelay: simDelay, SimPending: simPending})
	st.writeConfig(agentConfig)
	t.Logf("built and started acquirerd and possim in %s; directory %s", time.Since(began).Round(time.Millisecond), st.dir)
	st.startAgent()

	var sales []*sale
	var restarts []time.Duration
	restart := func(s *sale) {
		t.Helper()
		at := time.Now()
		st.startAgent()
		restarts = append(restarts, time.Since(at))
		if s != nil {
			s.started = time.Now()
			// The POS app lost its connection: it asks again with the same key (a look-up).
			var p payment
			if _, err := st.do("POST", "/v1/payments", s.request(), &p); err != nil {
				t.Fatalf("%v: retry after restart: %v", s, err)
			}
			if p.ID != s.id {
				t.Fatalf("%v: the retry with the same idempotency key after a restart made payment %s (%s)", s, p.ID, p.State)
			}
		}
	}
	kill := func(s *sale, state string) {
		s.kills = append(s.kills, state)
		st.killAgent()
		restart(s)
	}

	for i := range n {
		if i >= minPayments && time.Since(began) > budget {
			t.Logf("time budget: %d payments instead of %d (the build took its share)", i, n)
			break
		}
		pth := paths[rng.IntN(len(paths))]
		s := &sale{n: i + 1, path: pth, key: fmt.Sprintf("e2e-%d-%d", seed%100000, i+1), amount: 1000 + 100*int64(i) + pth.suffix, plan: pickPlan(rng)}
		sales = append(sales, s)
		st.pay(t, s, rng, kill)
	}

	// A last restart: every final state must survive it, and the agent's reconciler gets a
	// fresh start with whatever is left.
	st.killAgent()
	restart(nil)
	settle := time.Now()
	deadline := time.Now().Add(openBound)
	for {
		open := 0
		for _, s := range sales {
			var p payment
			if _, err := st.do("GET", "/v1/payments/"+s.id, nil, &p); err != nil {
				t.Fatalf("%v: %v", s, err)
			}
			if !isFinal(p.State) {
				open++
			} else if p.State != s.final || p.code() != s.code {
				t.Errorf("%v: after the last restart the API says %s %s", s, p.State, p.code())
			}
		}
		revs, err := st.metric("posagent_reversals_pending")
		if err != nil {
			t.Fatal(err)
		}
		authorizing, err := st.journalAuthorizing()
		if err != nil {
			t.Fatal(err)
		}
		if open == 0 && revs == 0 && authorizing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s after the last restart: %d payments open, %g reversals pending, %d sales authorizing in the journal", openBound, open, revs, authorizing)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("after the last restart: all final, no reversal pending, nothing authorizing in %s", time.Since(settle).Round(time.Millisecond))

	// The acquirer's ledger against the counter.
	ledger, err := st.ledger()
	if err != nil {
		t.Fatal(err)
	}
	byKey := map[string][]ledgerEntry{}
	for _, l := range ledger {
		byKey[l.IdempotencyKey] = append(byKey[l.IdempotencyKey], l)
	}
	disagree := 0
	for _, s := range sales {
		entries := byKey[s.key]
		delete(byKey, s.key)
		var l ledgerEntry
		if len(entries) > 1 {
			disagree++
			t.Errorf("%v: %d ledger entries for one idempotency key: %+v", s, len(entries), entries)
		}
		var captured int64
		for _, e := range entries {
			captured += e.Captured
		}
		if len(entries) > 0 {
			l = entries[0]
			s.ledger = fmt.Sprintf("%s captured %d", l.State, captured)
		} else {
			s.ledger = "no entry"
		}
		ok := true
		switch {
		case s.final == "approved":
			ok = captured == s.amount && l.State == "approved" && l.Amount == s.amount
		case s.final == "stored":
			ok = captured == 0 || captured == s.amount // offline: confirmed after upload (wallet codes are never stored here)
		default:
			ok = captured == 0
		}
		if !ok {
			disagree++
			t.Errorf("DISAGREEMENT %v; ledger %+v (captured %d)\nagent log lines:\n%s", s, entries, captured, st.logLines(s))
		}
	}
	for key, entries := range byKey {
		disagree++
		t.Errorf("the ledger has a sale no payment made: key %s %+v", key, entries)
	}

	// No payment stayed open longer than the reconciler's windows after a (re)start.
	for _, s := range sales {
		if s.maxOpen > openBound {
			t.Errorf("%v: open for %s after the agent (re)started with it (bound %s)", s, s.maxOpen.Round(time.Millisecond), openBound)
		}
	}
	report(t, sales, restarts, disagree, time.Since(began))
}

func pickPlan(rng *rand.Rand) string {
	total := 0
	for _, k := range killPlans {
		total += k.weight
	}
	r := rng.IntN(total)
	for _, k := range killPlans {
		if r < k.weight {
			return k.plan
		}
		r -= k.weight
	}
	return killNone
}

func (s *sale) request() map[string]any {
	return map[string]any{"amount": s.amount, "currency": "CNY", "idempotency_key": s.key, "mode": "scan", "reference": "R" + strconv.Itoa(s.n)}
}

// pay runs one payment to its final state: create, scan, and the kills of its plan.
func (st *stack) pay(t *testing.T, s *sale, rng *rand.Rand, kill func(*sale, string)) {
	t.Helper()
	// Create: the previous payment may still be wrapping up (409 busy meanwhile).
	deadline := time.Now().Add(openBound)
	for {
		var p payment
		code, err := st.do("POST", "/v1/payments", s.request(), &p)
		if err == nil {
			s.id = p.ID
			break
		}
		if code != 409 || time.Now().After(deadline) {
			t.Fatalf("%v: create: %v", s, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.started = time.Now()
	if err := st.scan(wechatCode); err != nil {
		t.Fatal(err)
	}
	scanned := time.Now()
	killsLeft := 0
	var killAt time.Time
	switch s.plan {
	case killAfterScan:
		killsLeft, killAt = 1, scanned.Add(time.Duration(rng.IntN(150))*time.Millisecond)
	case killAuthorizing, killOpen, killFinal:
		killsLeft = 1
	case killTwice:
		killsLeft = 2
	}
	for {
		var p payment
		if _, err := st.do("GET", "/v1/payments/"+s.id, nil, &p); err != nil {
			t.Fatalf("%v: %v", s, err)
		}
		now := time.Now()
		s.see(p.State)
		if p.SaleID != "" {
			s.saleID = p.SaleID
		}
		if open := now.Sub(s.started); !isFinal(p.State) && open > s.maxOpen {
			s.maxOpen = open
		}
		if (p.State == "checking" || p.State == "pending_customer") && s.openAt.IsZero() {
			s.openAt, s.openIn = now, p.State
		}
		if isFinal(p.State) {
			if s.final == "" {
				s.final, s.code, s.doneAt = p.State, p.code(), now
			} else if s.final != p.State || s.code != p.code() {
				t.Errorf("%v: a final state changed to %s %s", s, p.State, p.code())
			}
			if killsLeft > 0 && s.plan == killFinal {
				killsLeft--
				kill(s, p.State)
				continue
			}
			return
		}
		if now.Sub(s.started) > openBound+5*time.Second {
			t.Fatalf("STUCK %v: still %s %s after the agent's (re)start\nagent log lines:\n%s", s, p.State, now.Sub(s.started).Round(time.Millisecond), st.logLines(s))
		}
		if killsLeft > 0 {
			switch s.plan {
			case killAuthorizing:
				if p.State == "authorizing" {
					killAt = now
				}
			case killOpen, killTwice:
				if killAt.IsZero() && (p.State == "checking" || p.State == "pending_customer") {
					// A random moment: half soon (a check or the customer's answer is
					// under way), half anywhere in the window (its end is where reversals
					// happen).
					window := checkWindow
					if p.State == "pending_customer" {
						window = pendingWindow
					}
					if rng.IntN(2) == 0 {
						window = 500 * time.Millisecond
					}
					killAt = now.Add(time.Duration(rng.Int64N(int64(window))))
				}
			}
			if !killAt.IsZero() && !now.Before(killAt) {
				killsLeft--
				killAt = time.Time{}
				kill(s, p.State)
				// The scan may have been lost with the agent: the cashier scans again
				// when the payment still waits a moment after the restart.
				st.rescanIfWaiting(t, s)
				continue
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// rescanIfWaiting scans again when the payment still waits for a code a second after the
// restart (the first scan died with the agent before it was read).
func (st *stack) rescanIfWaiting(t *testing.T, s *sale) {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for {
		var p payment
		if _, err := st.do("GET", "/v1/payments/"+s.id, nil, &p); err != nil {
			t.Fatalf("%v: %v", s, err)
		}
		if p.State != "waiting" {
			return
		}
		if time.Now().After(deadline) {
			s.see("rescan")
			if err := st.scan(wechatCode); err != nil {
				t.Fatal(err)
			}
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// journalAuthorizing is the number of journal records the agent reports authorizing.
func (st *stack) journalAuthorizing() (int, error) {
	var status struct {
		Journal struct {
			ByState map[string]int `json:"by_state"`
		} `json:"journal"`
	}
	if _, err := st.do("GET", "/v1/status", nil, &status); err != nil {
		return 0, err
	}
	return status.Journal.ByState["authorizing"], nil
}

// logLines are the agent's log lines (every start) about the sale.
func (st *stack) logLines(s *sale) string {
	var b strings.Builder
	for i, log := range st.logs {
		for _, line := range grepLog(log, s.id, s.saleID, s.key) {
			if len(line) > 400 {
				line = line[:400] + "…"
			}
			fmt.Fprintf(&b, "  [start %d] %s\n", i+1, line)
		}
	}
	return b.String()
}

func report(t *testing.T, sales []*sale, restarts []time.Duration, disagree int, took time.Duration) {
	t.Helper()
	kills := 0
	type key struct{ path, outcome string }
	outcomes := map[key][2]int{} // [not killed, killed]
	var byOpen = map[string][2][]time.Duration{}
	killStates := map[string]int{}
	plans := map[string]string{}
	planned := map[string][2]int{}
	for _, s := range sales {
		kills += len(s.kills)
		for _, k := range s.kills {
			killStates[k]++
		}
		pc := planned[s.plan]
		pc[0]++
		if len(s.kills) > 0 {
			pc[1]++
		}
		planned[s.plan] = pc
		k := key{fmt.Sprintf("%02d %s", s.path.suffix, s.path.name), strings.TrimSpace(s.final + " " + s.code)}
		c := outcomes[k]
		killed := 0
		if len(s.kills) > 0 {
			killed = 1
		}
		c[killed]++
		outcomes[k] = c
		if !s.openAt.IsZero() {
			d := byOpen[s.openIn]
			d[killed] = append(d[killed], s.doneAt.Sub(s.openAt))
			byOpen[s.openIn] = d
		}
		if len(s.kills) == 0 && s.final != s.path.want {
			t.Errorf("%v: not killed, want %s", s, s.path.want)
		}
	}
	for p, c := range planned {
		plans[p] = fmt.Sprintf("%d/%d", c[0], c[1])
	}
	keys := make([]key, 0, len(outcomes))
	for k := range outcomes {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].path != keys[j].path {
			return keys[i].path < keys[j].path
		}
		return keys[i].outcome < keys[j].outcome
	})
	t.Logf("%d payments, %d SIGKILLs, %d disagreements with the ledger, %s in all", len(sales), kills, disagree, took.Round(100*time.Millisecond))
	t.Logf("  kills by the state the API last showed: %v; by plan (planned/killed): %v", killStates, plans)
	for _, k := range keys {
		c := outcomes[k]
		t.Logf("  %-42s → %-18s %2d not killed, %2d killed", k.path, k.outcome, c[0], c[1])
	}
	for _, state := range []string{"checking", "pending_customer"} {
		d := byOpen[state]
		t.Logf("  %s → final: not killed %s; killed %s", state, quantiles(d[0]), quantiles(d[1]))
	}
	t.Logf("  agent restart to ready: %s", quantiles(restarts))
	for _, s := range sales {
		if len(s.kills) > 0 {
			t.Logf("  %v", s)
		}
	}
}

func quantiles(d []time.Duration) string {
	if len(d) == 0 {
		return "none"
	}
	s := slices.Clone(d)
	slices.Sort(s)
	q := func(p float64) time.Duration { return s[min(len(s)-1, int(p*float64(len(s))))].Round(time.Millisecond) }
	return fmt.Sprintf("n=%d p50 %s p99 %s max %s", len(s), q(0.5), q(0.99), s[len(s)-1].Round(time.Millisecond))
}
