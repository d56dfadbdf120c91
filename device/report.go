package device

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/posagent/posagent"
	"github.com/posagent/posagent/drivers/escpos"
	"github.com/posagent/posagent/offline"
	"github.com/posagent/posagent/sync/wire"
)

// The shift report on the local API:
//
//	GET  /v1/reports/current[?print=true]   the X report: the journal's totals since the last close
//	POST /v1/reports/close                  the Z report: closes the shift, stores it, prints it
//
// Each report holds the journal's totals (offline.ShiftTotals), the acquirer's totals for
// the same period when it can be asked (wire.Totals), and every difference between the two
// with what it means and what to do.

// Report is a shift report as the local API shows it.
type Report struct {
	Kind     string     `json:"kind"` // "X" or "Z"
	Number   int64      `json:"number"`
	Terminal string     `json:"terminal"`
	From     time.Time  `json:"from"`
	To       time.Time  `json:"to"`
	ClosedAt *time.Time `json:"closed_at,omitempty"`
	// The shift's records: journal sequences after AfterSequence up to LastSequence.
	AfterSequence uint64              `json:"after_sequence"`
	LastSequence  uint64              `json:"last_sequence"`
	Totals        offline.ShiftTotals `json:"totals"`
	Acquirer      AcquirerComparison  `json:"acquirer"`
	// Differences are what the counter and the acquirer do not (yet) agree on, record by
	// record where the journal knows the record, and by currency for the rest.
	Differences []Difference `json:"differences"`
	// Replayed: a close with an idempotency key already used returns the Z report it made
	// (and does not print it again).
	Replayed bool        `json:"replayed,omitempty"`
	Print    *ReportSlip `json:"print,omitempty"`
}

// AcquirerComparison is the acquirer's side of a report.
type AcquirerComparison struct {
	Compared bool         `json:"compared"`
	Reason   string       `json:"reason,omitempty"` // why it was not compared
	Totals   *wire.Totals `json:"totals,omitempty"`
}

// Difference is one thing the counter and the acquirer do not agree on.
type Difference struct {
	// Code: sync_pending (the acquirer does not have it or its answer is not back yet),
	// authorizing (the outcome is not known yet), declined_after_upload (an offline sale the
	// acquirer declined: goods went out, the money was not collected), mismatch (the two
	// disagree and the journal does not explain why).
	Code     string `json:"code"`
	Sequence uint64 `json:"sequence,omitempty"`
	SaleID   string `json:"sale_id,omitempty"`
	Kind     string `json:"kind,omitempty"` // sale or refund
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
	Message  string `json:"message"` // what it means
	Action   string `json:"action"`  // what to do
}

// ReportSlip says whether the report was printed.
type ReportSlip struct {
	Printed bool   `json:"printed"`
	Error   string `json:"error,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// CloseRequest is the optional body of POST /v1/reports/close.
type CloseRequest struct {
	IdempotencyKey string `json:"idempotency_key"`
}

// reportRoutes registers the report endpoints on the API's mux.
func (a *Agent) reportRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/reports/current", a.handleReportCurrent)
	mux.HandleFunc("POST /v1/reports/close", a.handleReportClose)
}

func (a *Agent) handleReportCurrent(w http.ResponseWriter, r *http.Request) {
	printIt, err := boolParam(r, "print")
	if err != nil {
		writeErr(w, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 60*time.Second)
	defer cancel()
	rep, err := a.CurrentReport(ctx, printIt)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

func (a *Agent) handleReportClose(w http.ResponseWriter, r *http.Request) {
	// The body is optional: none (or white space) closes without a key.
	body, err := io.ReadAll(io.LimitReader(r.Body, 4097))
	if err != nil {
		writeError(w, 400, "bad_request", "read body: "+err.Error())
		return
	}
	var req CloseRequest
	if len(bytes.TrimSpace(body)) > 0 {
		if err := DecodeJSON(bytes.NewReader(body), 4096, &req); err != nil {
			writeErr(w, err)
			return
		}
	}
	if !headerKey(w, r, &req.IdempotencyKey) {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 60*time.Second)
	defer cancel()
	rep, err := a.CloseShift(ctx, req.IdempotencyKey)
	if err != nil {
		writeErr(w, err)
		return
	}
	status := http.StatusCreated
	if rep.Replayed {
		w.Header().Set("Idempotent-Replayed", "true")
		status = http.StatusOK
	}
	writeJSON(w, status, rep)
}

func boolParam(r *http.Request, name string) (bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, &apiError{400, "bad_request", fmt.Sprintf("%s=%q: true or false", name, v)}
	}
	return b, nil
}

// CurrentReport is the X report: the current shift up to now, compared with the acquirer,
// printed when print is set (a printer that fails does not fail the report: Print says so).
func (a *Agent) CurrentReport(ctx context.Context, printIt bool) (*Report, error) {
	s, err := a.journal.CurrentShift(ctx, a.now())
	if err != nil {
		return nil, err
	}
	rep := a.report(ctx, s)
	if printIt {
		rep.Print = a.printReport(rep)
	}
	a.publishReport(rep)
	return rep, nil
}

// CloseShift makes the Z report (see offline.Journal.CloseShift: numbered, stored, and
// idempotent with a key), compares it with the acquirer and prints it when a printer is
// configured. A replayed close is not printed again.
func (a *Agent) CloseShift(ctx context.Context, key string) (*Report, error) {
	s, closed, err := a.journal.CloseShift(ctx, a.now(), key)
	if errors.Is(err, posagent.ErrInvalidInput) {
		return nil, &apiError{422, "invalid", err.Error()}
	} else if err != nil {
		return nil, err
	}
	rep := a.report(ctx, s)
	rep.Replayed = !closed
	if closed && a.dev.printer != nil {
		rep.Print = a.printReport(rep)
	}
	a.log.Info("shift closed", "number", s.Number, "from", s.From, "to", s.To, "replayed", rep.Replayed, "differences", len(rep.Differences))
	a.publishReport(rep)
	return rep, nil
}

// report compares the shift with the acquirer's totals, when the acquirer answers.
func (a *Agent) report(ctx context.Context, s offline.Shift) *Report {
	rep := &Report{Kind: "X", Number: s.Number, Terminal: a.cfg.Terminal, From: s.From, To: s.To, AfterSequence: s.AfterSequence,
		LastSequence: s.LastSequence, Totals: s.Totals}
	if s.Closed() {
		at := s.ClosedAt
		rep.Kind, rep.ClosedAt = "Z", &at
	}
	var acq *wire.Totals
	switch {
	case !s.To.After(s.From):
		rep.Acquirer.Reason = "the period is empty: nothing to compare"
	case !a.online.Load():
		rep.Acquirer.Reason = "the acquirer is unreachable: the totals could not be compared"
	default:
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		t, err := a.client.Totals(actx, s.From, s.To)
		cancel()
		if err != nil {
			rep.Acquirer.Reason = "the acquirer did not give its totals: " + err.Error()
		} else {
			acq = &t
			rep.Acquirer = AcquirerComparison{Compared: true, Totals: acq}
		}
	}
	rep.Differences = Compare(s.Totals, acq)
	return rep
}

// Compare lists the differences between the journal's totals and the acquirer's (nil when
// the acquirer could not be asked: then only what the journal knows is listed). Records
// the journal points out come first, in sequence order, then what is left per currency
// once they are accounted for.
func Compare(t offline.ShiftTotals, acq *wire.Totals) []Difference {
	out := []Difference{}
	for _, n := range t.Notices {
		out = append(out, notice(n))
	}
	if t.NoticesMore > 0 {
		out = append(out, Difference{Code: "sync_pending", Message: fmt.Sprintf("%d more records of the period are not settled yet", t.NoticesMore),
			Action: "see them with 'posagent queue ls'; take the report again once the terminal has synced"})
	}
	if acq == nil {
		return out
	}
	curs := map[string]bool{}
	for _, c := range t.Currencies {
		curs[c.Currency] = true
	}
	for c := range acq.Captured {
		curs[c] = true
	}
	for c := range acq.ByState[string(wire.Approved)].Amount {
		curs[c] = true
	}
	for c := range acq.Refunds.Amount {
		curs[c] = true
	}
	codes := make([]string, 0, len(curs))
	for c := range curs {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	for _, code := range codes {
		ct := t.Currency(code)
		// Sales: the acquirer's approved ones against the journal's approved. Offline sales
		// still pending at the counter may already be approved at the acquirer (their
		// results are not back yet): a surplus within what is pending is explained.
		gotSales := acq.ByState[string(wire.Approved)].Amount[code]
		if d := gotSales - ct.Approved.Amount; d != 0 {
			out = append(out, amountDiff(code, "sales", d, ct.PendingOffline.Amount))
		}
		if d := acq.Refunds.Amount[code] - ct.RefundsApproved.Amount; d != 0 {
			out = append(out, amountDiff(code, "refunds", d, ct.RefundsPending.Amount))
		}
	}
	return out
}

// notice is the difference a record the journal points out makes.
func notice(n offline.Notice) Difference {
	cur := mustCurrency(n.Currency)
	what := "sale"
	if n.Kind == posagent.KindRefund {
		what = "refund"
	}
	d := Difference{Sequence: n.Sequence, SaleID: n.ID, Kind: what, Amount: n.Amount, Currency: n.Currency}
	amt := offline.FormatAmount(n.Amount, cur) + " " + n.Currency
	switch {
	case n.DeclinedAfterUpload():
		d.Code = "declined_after_upload"
		d.Message = fmt.Sprintf("sale #%d (%s) declined after upload: the money was not collected", n.Sequence, amt)
		d.Action = "the goods went out unpaid: ask the customer to pay again, or write the amount off"
	case n.State == posagent.StateAuthorizing:
		d.Code = "authorizing"
		d.Message = fmt.Sprintf("%s #%d (%s) is still being authorized: its outcome is not known yet", what, n.Sequence, amt)
		d.Action = "the agent settles it with the acquirer on its own; take the report again in a minute"
	case n.State == posagent.StateStored:
		d.Code = "sync_pending"
		d.Message = fmt.Sprintf("%s #%d (%s) not yet at the acquirer: sync pending", what, n.Sequence, amt)
		d.Action = "keep the terminal online: it uploads stored records on its own ('posagent status' shows the sync)"
	default: // uploading
		d.Code = "sync_pending"
		d.Message = fmt.Sprintf("%s #%d (%s) sent to the acquirer, its result not back yet: sync pending", what, n.Sequence, amt)
		d.Action = "wait for the next sync round; the result comes back on its own"
	}
	return d
}

// amountDiff is a difference of a currency's approved sales or refunds: the acquirer holds
// d more (or less, d < 0) than the journal; up to pending of a surplus is explained by
// records pending at the counter.
func amountDiff(code, what string, d, pending int64) Difference {
	cur := mustCurrency(code)
	f := func(v int64) string { return offline.FormatAmount(v, cur) + " " + code }
	if d > 0 && d <= pending {
		return Difference{Code: "sync_pending", Amount: d, Currency: code,
			Message: fmt.Sprintf("the acquirer has approved %s more %s than the counter knows: results of pending records not back yet", f(d), what),
			Action:  "wait for the next sync round: the counter catches up on its own"}
	}
	more := "more"
	if d < 0 {
		more = "fewer"
	}
	return Difference{Code: "mismatch", Amount: d, Currency: code,
		Message: fmt.Sprintf("the acquirer holds %s %s approved %s than the journal, not explained by records pending at the counter", f(abs(d)), more, what),
		Action:  "reconcile: compare 'posagent queue ls' with the acquirer's ledger for the period, and call the acquirer"}
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

func (a *Agent) publishReport(rep *Report) {
	ev := map[string]any{"kind": rep.Kind, "number": rep.Number, "from": rep.From, "to": rep.To,
		"differences": len(rep.Differences), "compared": rep.Acquirer.Compared}
	if rep.Replayed {
		ev["replayed"] = true
	}
	if rep.Print != nil {
		ev["printed"] = rep.Print.Printed
	}
	a.events.publish("report", ev)
}

// printReport prints the report; a printer that fails is reported, not an error.
func (a *Agent) printReport(rep *Report) *ReportSlip {
	if a.dev.printer == nil {
		return &ReportSlip{Error: "no printer is configured", Reason: "no-printer"}
	}
	ctx, cancel := context.WithTimeout(a.hardCtx, 60*time.Second)
	defer cancel()
	_, err := a.dev.printer.Print(ctx, a.reportReceipt(rep))
	slip := &ReportSlip{Printed: err == nil}
	if err != nil {
		slip.Error, slip.Reason = err.Error(), escpos.Reason(err)
		a.log.Warn("shift report not printed", "kind", rep.Kind, "number", rep.Number, "err", err)
	}
	a.events.publish("receipt", map[string]any{"kind": "report", "printed": slip.Printed, "error": slip.Error})
	return slip
}

// reportReceipt lays the report out as a receipt: the first currency's figures as totals
// (a receipt has one currency), any other currency's as lines, then the differences.
func (a *Agent) reportReceipt(rep *Report) *posagent.Receipt {
	title := "X REPORT (shift not closed)"
	if rep.Kind == "Z" {
		title = fmt.Sprintf("Z REPORT No. %d", rep.Number)
	}
	rc := &posagent.Receipt{Header: append(append([]string(nil), a.cfg.Merchant.Header...), title), Footer: []string{"End of report"}}
	if len(a.cfg.Merchant.Header) == 0 && a.cfg.Merchant.Name != "" {
		rc.Header = []string{a.cfg.Merchant.Name, title}
	}
	ts := func(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05") }
	lines := []string{"Terminal: " + rep.Terminal, "From: " + ts(rep.From), "To:   " + ts(rep.To)}
	if rep.Kind == "X" {
		lines = append(lines, fmt.Sprintf("Shift No. %d", rep.Number))
	}
	curs := rep.Totals.Currencies
	if len(curs) == 0 {
		rc.Currency = "CNY"
		lines = append(lines, "No sales in this shift.")
	}
	for i, c := range curs {
		cur := mustCurrency(c.Currency)
		f := func(v int64) string { return offline.FormatAmount(v, cur) }
		rows := []posagent.ReceiptLine{
			{Label: fmt.Sprintf("Sales approved (%d)", c.Approved.Count), Amount: c.Approved.Amount},
			{Label: fmt.Sprintf("  online (%d)", c.Online.Count), Amount: c.Online.Amount},
			{Label: fmt.Sprintf("  offline (%d)", c.Offline.Approved.Count), Amount: c.Offline.Approved.Amount},
			{Label: fmt.Sprintf("Pending offline (%d)", c.PendingOffline.Count), Amount: c.PendingOffline.Amount},
			{Label: fmt.Sprintf("Refunds (%d)", c.RefundsApproved.Count), Amount: -c.RefundsApproved.Amount},
		}
		if c.RefundsPending.Count > 0 {
			rows = append(rows, posagent.ReceiptLine{Label: fmt.Sprintf("Refunds pending (%d)", c.RefundsPending.Count), Amount: -c.RefundsPending.Amount})
		}
		if c.DeclinedAfterUpload.Count > 0 {
			rows = append(rows, posagent.ReceiptLine{Label: fmt.Sprintf("Declined after upload (%d)", c.DeclinedAfterUpload.Count), Amount: c.DeclinedAfterUpload.Amount})
		}
		rows = append(rows, posagent.ReceiptLine{Label: "Net " + c.Currency, Amount: c.Net})
		methods := make([]string, 0, len(c.ByMethod))
		for m := range c.ByMethod {
			methods = append(methods, string(m))
		}
		sort.Strings(methods)
		var byMethod []posagent.ReceiptLine
		for _, m := range methods {
			s := c.ByMethod[posagent.Method(m)]
			byMethod = append(byMethod, posagent.ReceiptLine{Label: fmt.Sprintf("%s (%d)", m, s.Approved.Count+s.PendingOffline.Count),
				Amount: s.Approved.Amount + s.PendingOffline.Amount})
		}
		if i == 0 {
			rc.Currency, rc.Totals, rc.Payments = c.Currency, rows, byMethod
			continue
		}
		lines = append(lines, "-- "+c.Currency+" --")
		for _, r := range append(rows, byMethod...) {
			lines = append(lines, r.Label+": "+f(r.Amount))
		}
	}
	switch {
	case rep.Acquirer.Compared && len(rep.Differences) == 0:
		lines = append(lines, "Acquirer: totals agree.")
	case rep.Acquirer.Compared:
		lines = append(lines, "Acquirer: compared.")
	default:
		lines = append(lines, "Acquirer: not compared.")
	}
	if n := len(rep.Differences); n > 0 {
		lines = append(lines, fmt.Sprintf("Differences: %d", n))
	}
	for i, d := range rep.Differences {
		if i == 10 {
			lines = append(lines, fmt.Sprintf("... and %d more", len(rep.Differences)-i))
			break
		}
		lines = append(lines, "* "+d.Message)
	}
	for i, l := range lines {
		if r := []rune(l); len(r) > posagent.MaxReceiptText {
			lines[i] = string(r[:posagent.MaxReceiptText])
		}
	}
	rc.Lines = lines
	return rc
}
