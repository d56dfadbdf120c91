package device

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent"
	"github.com/posagent/posagent/internal/possim"
	"github.com/posagent/posagent/offline"
	"github.com/posagent/posagent/sync/wire"
)

// The shift report through the real stack: sales, an X report that agrees with the
// acquirer, a Z report printed on possim's printer, its idempotent retry, and the next
// shift starting empty.
func TestAgent_ShiftReport(t *testing.T) {
	e := newEnv(t, nil)
	ev := e.subscribe("")
	sales := []struct {
		amount int64
		code   string
		want   PaymentState
	}{
		{1250, wechatCode, PaymentApproved},
		{800, alipayCode, PaymentApproved},
		{330, cpmCode, PaymentApproved},
		{4551, wechatCode, PaymentDeclined}, // ends in 51: the acquirer declines it
	}
	var approved int64
	var first *Payment
	for i, s := range sales {
		p := e.create(s.amount, fmt.Sprint("k-shift-", i), ModeScan)
		e.scan(s.code)
		if got := e.wait(p.ID, done); got.State != s.want {
			t.Fatalf("sale %d: %s, want %s", i, got.State, s.want)
		}
		if s.want == PaymentApproved {
			approved += s.amount
		}
		if first == nil {
			first = p
		}
	}
	var rf Refund
	if code := e.do("POST", "/v1/payments/"+first.ID+"/refunds", RefundRequest{Amount: 250, IdempotencyKey: "rf-shift"}, &rf); code != 201 || rf.State != "approved" {
		t.Fatalf("refund: %d %+v", code, rf)
	}

	var x Report
	if code := e.do("GET", "/v1/reports/current", nil, &x); code != 200 {
		t.Fatalf("X report: status %d", code)
	}
	cny := x.Totals.Currency("CNY")
	if got, want := fmt.Sprintf("%s %d %d/%d %d/%d %d/%d %d", x.Kind, x.Number, cny.Approved.Count, cny.Approved.Amount,
		cny.Sales[posagent.StateDeclined].Count, cny.Sales[posagent.StateDeclined].Amount, cny.RefundsApproved.Count, cny.RefundsApproved.Amount, cny.Net),
		fmt.Sprintf("X 1 3/%d 1/4551 1/250 %d", approved, approved-250); got != want {
		t.Errorf("X report = %q, want %q", got, want)
	}
	if !x.Acquirer.Compared || x.Acquirer.Totals == nil || x.Acquirer.Totals.ByState["approved"].Amount["CNY"] != approved ||
		x.Acquirer.Totals.Refunds.Amount["CNY"] != 250 || x.Acquirer.Totals.Captured["CNY"] != cny.Net {
		t.Errorf("X report's acquirer side %+v", x.Acquirer)
	}
	if len(x.Differences) != 0 {
		t.Errorf("X report: differences %+v, want none", x.Differences)
	}
	ev.next(t, "report", func(m map[string]any) bool { return m["kind"] == "X" && m["number"] == float64(1) })

	var z Report
	if code := e.do("POST", "/v1/reports/close", CloseRequest{IdempotencyKey: "z-1"}, &z); code != 201 {
		t.Fatalf("close: status %d", code)
	}
	if z.Kind != "Z" || z.Number != 1 || z.ClosedAt == nil || !z.From.Equal(x.From) || z.Print == nil || !z.Print.Printed ||
		z.AfterSequence != 0 || z.LastSequence != 5 { // four sales and the refund
		t.Errorf("Z report %+v (print %+v)", z, z.Print)
	}
	if got, want := z.Totals.Currency("CNY"), cny; !reflect.DeepEqual(got, want) {
		t.Errorf("Z totals differ from the X report's:\n got %+v\nwant %+v", got, want)
	}
	job := e.waitPrinted("Z REPORT")
	for _, want := range []string{"Z REPORT No. 1", "Sales approved (3)", offline.FormatAmount(approved, mustCurrency("CNY")), "Refunds (1)", "-2.50", "Net CNY",
		offline.FormatAmount(approved-250, mustCurrency("CNY")), "Acquirer: totals agree."} {
		if !strings.Contains(job.Text, want) {
			t.Errorf("printed Z report lacks %q:\n%s", want, job.Text)
		}
	}
	ev.next(t, "report", func(m map[string]any) bool {
		return m["kind"] == "Z" && m["number"] == float64(1) && m["printed"] == true
	})

	t.Run("retried close", func(t *testing.T) {
		var again Report
		if code := e.do("POST", "/v1/reports/close", CloseRequest{IdempotencyKey: "z-1"}, &again); code != 200 {
			t.Fatalf("close again: status %d", code)
		}
		if !again.Replayed || again.Number != 1 || !again.ClosedAt.Equal(*z.ClosedAt) || again.Print != nil {
			t.Errorf("close again = %+v, want Z 1 replayed and not printed", again)
		}
	})
	t.Run("next shift", func(t *testing.T) {
		var next Report
		e.do("GET", "/v1/reports/current", nil, &next)
		if next.Kind != "X" || next.Number != 2 || !next.From.Equal(z.To) || next.Totals.Records != 0 {
			t.Errorf("X after the close = %+v", next)
		}
	})
	t.Run("close without a body", func(t *testing.T) {
		var z2 Report
		if code := e.do("POST", "/v1/reports/close", nil, &z2); code != 201 || z2.Number != 2 {
			t.Errorf("close without a body: %d %+v", code, z2)
		}
	})
	t.Run("errors", func(t *testing.T) {
		var er struct{ Error ErrorInfo }
		if code := e.do("POST", "/v1/reports/close", map[string]any{"idempotency_key": 7}, &er); code != 400 || er.Error.Code != "bad_request" {
			t.Errorf("bad body: %d %+v", code, er)
		}
		if code := e.do("GET", "/v1/reports/current?print=maybe", nil, &er); code != 400 || er.Error.Code != "bad_request" {
			t.Errorf("print=maybe: %d %+v", code, er)
		}
		req, _ := http.NewRequest("GET", e.url+"/v1/reports/current", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Errorf("without the token: %d", resp.StatusCode)
		}
	})
}

// An offline sale declined after upload: the report lists it as not yet at the acquirer
// while the acquirer is down, then as declined after upload, the money not collected.
func TestAgent_ShiftReportDeclinedAfterUpload(t *testing.T) {
	e := newEnv(t, nil)
	ev := e.subscribe("")
	e.down.Store(true)
	ev.next(t, "acquirer", func(m map[string]any) bool { return m["online"] == false })

	p := e.create(2061, "k-report-later", ModeScan)
	e.scan(cpmCode)
	stored := e.wait(p.ID, done)
	if stored.State != PaymentStored {
		t.Fatalf("offline sale %+v", stored)
	}
	var x Report
	e.do("GET", "/v1/reports/current", nil, &x)
	if x.Acquirer.Compared || x.Acquirer.Reason == "" {
		t.Errorf("acquirer down: %+v", x.Acquirer)
	}
	want := fmt.Sprintf("sale #%d (20.61 CNY) not yet at the acquirer: sync pending", stored.Sequence)
	if len(x.Differences) != 1 || x.Differences[0].Code != "sync_pending" || x.Differences[0].Message != want {
		t.Errorf("differences while down: %+v, want one: %q", x.Differences, want)
	}
	if got := x.Totals.Currency("CNY").PendingOffline; got != (offline.Count{Count: 1, Amount: 2061}) {
		t.Errorf("pending offline %+v", got)
	}

	e.down.Store(false)
	ev.next(t, "acquirer", func(m map[string]any) bool { return m["online"] == true })
	ev.next(t, "payment", func(m map[string]any) bool { return m["id"] == p.ID && m["state"] == "declined" })
	e.do("GET", "/v1/reports/current?print=true", nil, &x)
	want = fmt.Sprintf("sale #%d (20.61 CNY) declined after upload: the money was not collected", stored.Sequence)
	if !x.Acquirer.Compared || len(x.Differences) != 1 || x.Differences[0].Code != "declined_after_upload" || x.Differences[0].Message != want ||
		x.Differences[0].Action == "" {
		t.Errorf("report after upload: compared %v (%s), differences %+v; want one: %q", x.Acquirer.Compared, x.Acquirer.Reason, x.Differences, want)
	}
	if got := x.Totals.Currency("CNY").DeclinedAfterUpload; got != (offline.Count{Count: 1, Amount: 2061}) {
		t.Errorf("declined after upload %+v", got)
	}
	if x.Print == nil || !x.Print.Printed {
		t.Errorf("X report with print=true: %+v", x.Print)
	}
}

func TestCompare(t *testing.T) {
	tally := func(amount int64) wire.Tally { return wire.Tally{Count: 1, Amount: map[string]int64{"CNY": amount}} }
	journal := offline.ShiftTotals{Currencies: []offline.CurrencyTotals{{Currency: "CNY",
		Approved: offline.Count{Count: 2, Amount: 3000}, PendingOffline: offline.Count{Count: 1, Amount: 700},
		RefundsApproved: offline.Count{Count: 1, Amount: 100}}}}
	for _, tc := range []struct {
		name     string
		acq      *wire.Totals
		want     []string // code: amount
		wantText string
	}{
		{"not asked", nil, nil, ""},
		{"agree", &wire.Totals{ByState: map[string]wire.Tally{"approved": tally(3000)}, Refunds: tally(100)}, nil, ""},
		{"a pending sale approved at the acquirer", &wire.Totals{ByState: map[string]wire.Tally{"approved": tally(3700)}, Refunds: tally(100)},
			[]string{"sync_pending: 700"}, "results of pending records not back yet"},
		{"the acquirer holds less", &wire.Totals{ByState: map[string]wire.Tally{"approved": tally(2000)}, Refunds: tally(100)},
			[]string{"mismatch: -1000"}, "10.00 CNY fewer approved sales"},
		{"a refund the counter does not know", &wire.Totals{ByState: map[string]wire.Tally{"approved": tally(3000)}, Refunds: tally(300)},
			[]string{"mismatch: 200"}, "2.00 CNY more approved refunds"},
		{"another currency at the acquirer", &wire.Totals{ByState: map[string]wire.Tally{"approved": {Count: 3, Amount: map[string]int64{"CNY": 3000, "USD": 500}}}, Refunds: tally(100)},
			[]string{"mismatch: 500"}, "5.00 USD more approved sales"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			diffs := Compare(journal, tc.acq)
			var got []string
			for _, d := range diffs {
				got = append(got, fmt.Sprintf("%s: %d", d.Code, d.Amount))
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Compare = %v, want %v", got, tc.want)
			}
			if tc.wantText != "" && (len(diffs) == 0 || !strings.Contains(diffs[0].Message, tc.wantText) || diffs[0].Action == "") {
				t.Errorf("Compare = %+v, want a message with %q and an action", diffs, tc.wantText)
			}
		})
	}
}

// A report of an idle terminal's empty shift prints.
func TestAgent_ReportEmptyShiftPrints(t *testing.T) {
	e := newEnv(t, nil)
	var x Report
	if code := e.do("GET", "/v1/reports/current?print=1", nil, &x); code != 200 || x.Print == nil || !x.Print.Printed {
		t.Fatalf("X report of an empty shift: %d %+v", code, x.Print)
	}
	if job := e.waitPrinted("X REPORT"); !strings.Contains(job.Text, "No sales in this shift.") {
		t.Errorf("printed:\n%s", job.Text)
	}
}

// waitPrinted waits for the printer's first job with sub in its text (the sales' receipts
// are printed in the background, so the report is not simply the next job).
func (e *env) waitPrinted(sub string) *possim.PrintJob {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for n := 1; ; n++ {
		job, err := e.sim.Printer.WaitJob(ctx, n)
		if err != nil {
			e.t.Fatalf("no printed job with %q: %v", sub, err)
		}
		if strings.Contains(job.Text, sub) {
			return job
		}
	}
}
