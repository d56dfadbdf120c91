package device

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/posagent/posagent"
	"github.com/posagent/posagent/drivers/scanner"
	"github.com/posagent/posagent/internal/possim"
	"github.com/posagent/posagent/qr"
)

func TestAgent_OnlineApproved(t *testing.T) {
	e := newEnv(t, nil)
	ev := e.subscribe("")
	p := e.create(1250, "k-online-1", ModeScan)
	if p.State != PaymentWaiting || p.Amount != 1250 || p.Currency != "CNY" || p.Mode != ModeScan {
		t.Fatalf("created %+v", p)
	}
	e.waitScreen("12.50")
	e.scan(wechatCode)
	got := e.wait(p.ID, done)
	if got.State != PaymentApproved || got.Offline || got.Scheme != "wechat-pay" || got.Sequence == 0 || got.AuthCode == "" {
		t.Fatalf("payment %+v", got)
	}
	if strings.Contains(got.Credential, "7890123") || got.Credential == "" {
		t.Errorf("credential not masked: %q", got.Credential)
	}
	e.waitScreen("APPROVED")
	ev.next(t, "payment", func(m map[string]any) bool { return m["id"] == p.ID && m["state"] == "approved" })
	ev.next(t, "receipt", func(m map[string]any) bool { return m["payment_id"] == p.ID && m["printed"] == float64(1) })
	job, err := e.sim.Printer.WaitJob(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(job.Text, "CUSTOMER COPY") || !strings.Contains(job.Text, "12.50") || strings.Contains(job.Text, wechatCode) {
		t.Errorf("receipt:\n%s", job.Text)
	}
	rec, err := e.agent.journal.ByIdempotencyKey(context.Background(), "k-online-1")
	if err != nil || rec.State != posagent.StateApproved || rec.ID != got.SaleID {
		t.Errorf("journal %+v, %v", rec.Sale, err)
	}

	// A retry is a look-up; the same key for another payment is a conflict.
	var again Payment
	if code := e.do("POST", "/v1/payments", PaymentRequest{Amount: 1250, Currency: "CNY", IdempotencyKey: "k-online-1", Mode: ModeScan, Reference: "R-k-online-1"}, &again); code != 201 || again.ID != p.ID || again.State != PaymentApproved {
		t.Errorf("replay: %d %+v", code, again)
	}
	var errBody struct{ Error ErrorInfo }
	if code := e.do("POST", "/v1/payments", PaymentRequest{Amount: 999, Currency: "CNY", IdempotencyKey: "k-online-1"}, &errBody); code != 409 || errBody.Error.Code != "idempotency_conflict" {
		t.Errorf("conflict: %d %+v", code, errBody)
	}
}

func TestAgent_Declined(t *testing.T) {
	e := newEnv(t, nil)
	p := e.create(1251, "k-decline", ModeScan)
	e.scan(alipayCode)
	got := e.wait(p.ID, done)
	if got.State != PaymentDeclined || got.Error == nil || got.Error.Code != "declined" || got.Scheme != "alipay" {
		t.Fatalf("payment %+v", got)
	}
	e.waitScreen("DECLINED")
	time.Sleep(300 * time.Millisecond)
	if n := len(e.sim.Printer.Jobs()); n != 0 {
		t.Errorf("%d receipts printed for a declined payment", n)
	}
}

func TestAgent_OfflineStoredRefusedAndSynced(t *testing.T) {
	e := newEnv(t, nil)
	ev := e.subscribe("")
	e.down.Store(true)
	ev.next(t, "acquirer", func(m map[string]any) bool { return m["online"] == false })

	p := e.create(2000, "k-off-1", ModeScan)
	e.scan(cpmCode)
	stored := e.wait(p.ID, done)
	if stored.State != PaymentStored || !stored.Offline || stored.Method != "emv-cpm" {
		t.Fatalf("offline sale %+v", stored)
	}
	e.waitScreen("OFFLINE")
	job, err := e.sim.Printer.WaitJob(context.Background(), 1)
	if err != nil || !strings.Contains(job.Text, "confirmed") {
		t.Errorf("offline receipt: %v\n%v", err, job)
	}

	// A wallet code is online only; a CPM over the per-sale limit is refused by the policy.
	for _, c := range []struct {
		key, code, want string
		amount          int64
	}{{"k-off-2", wechatCode, "offline_method", 3000}, {"k-off-3", cpmCode, "offline_sale_limit", 60000}} {
		p := e.create(c.amount, c.key, ModeScan)
		e.scan(c.code)
		got := e.wait(p.ID, done)
		if got.State != PaymentFailed || got.Error == nil || got.Error.Code != c.want {
			t.Errorf("%s: %+v %+v", c.key, got, got.Error)
		}
	}

	// Recovery: the backlog goes up and the offline sale is settled.
	e.down.Store(false)
	ev.next(t, "sync", func(m map[string]any) bool { return m["sent"] != nil && m["sent"].(float64) > 0 })
	settled := e.wait(p.ID, func(p *Payment) bool { return p.State == PaymentApproved })
	if !settled.Offline {
		t.Errorf("settled %+v", settled)
	}
}

func TestAgent_OfflineTimeoutFallsBackToPolicy(t *testing.T) {
	e := newEnv(t, nil)
	// 91: the acquirer hangs longer than the auth timeout; the CPM sale is stored.
	p := e.create(1091, "k-slow", ModeScan)
	e.scan(cpmCode)
	got := e.wait(p.ID, done)
	if got.State != PaymentStored || !got.Offline {
		t.Fatalf("payment %+v %+v", got, got.Error)
	}
}

func TestAgent_MerchantPresented(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Checkout.QRSlip = true })
	p := e.create(2372, "k-qr-1", ModeQR)
	if p.QR == "" || p.OrderReference != "R-k-qr-1" || p.Method != "merchant-qr" {
		t.Fatalf("created %+v", p)
	}
	mpm, err := qr.ParseMPM(p.QR, qr.Strict)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(p.QR, "540523.72") || !strings.Contains(p.QR, "R-k-qr-1") || mpm == nil {
		t.Errorf("payload %s", p.QR)
	}
	e.waitScreen("SCAN QR")
	// A scan meanwhile is ignored: the customer pays by scanning the shown code.
	ev := e.subscribe("")
	e.scan(wechatCode)
	ev.next(t, "scan", func(m map[string]any) bool { return m["reason"] == "merchant_qr" })
	got := e.wait(p.ID, done)
	if got.State != PaymentApproved {
		t.Fatalf("payment %+v", got)
	}
	slip, err := e.sim.Printer.WaitJob(context.Background(), 1)
	if err != nil || len(slip.QR) != 1 || slip.QR[0] != p.QR {
		t.Errorf("slip: %v %+v", err, slip)
	}

	req := PaymentRequest{Amount: 500, Currency: "CNY", IdempotencyKey: "k-qr-3", Mode: ModeQR, Reference: "O-3-EXPIRE"}
	var x Payment
	if code := e.do("POST", "/v1/payments", req, &x); code != 201 {
		t.Fatal(code)
	}
	got = e.wait(x.ID, done)
	if got.State != PaymentFailed || got.Error == nil || got.Error.Code != "expired" {
		t.Fatalf("expiring %+v %+v", got, got.Error)
	}
}

func TestAgent_FailuresHaveOutcomes(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Checkout.ScanTimeout = Dur(time.Second)
		// An authorization held on purpose must not time out into checking on a slow machine.
		c.Acquirer.AuthTimeout, c.Acquirer.RequestTimeout = Dur(20*time.Second), Dur(20*time.Second)
	})
	ev := e.subscribe("")

	t.Run("scan with no sale open", func(t *testing.T) {
		e.scan(wechatCode)
		ev.next(t, "scan", func(m map[string]any) bool { return m["reason"] == "no_sale" })
	})
	t.Run("cancel a waiting payment", func(t *testing.T) {
		p := e.create(100, "k-cancel", ModeScan)
		var got Payment
		if code := e.do("POST", "/v1/payments/"+p.ID+"/cancel", nil, &got); code != 200 || got.State != PaymentCanceled {
			t.Fatalf("cancel: %d %+v", code, got)
		}
		var body struct{ Error ErrorInfo }
		if code := e.do("POST", "/v1/payments/"+p.ID+"/cancel", nil, &got); code != 200 {
			t.Errorf("second cancel: %d %+v", code, body)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		p := e.create(101, "k-timeout", ModeScan)
		got := e.wait(p.ID, done)
		if got.State != PaymentFailed || got.Error.Code != "timeout" {
			t.Fatalf("%+v", got)
		}
	})
	t.Run("second payment while one is open", func(t *testing.T) {
		p := e.create(102, "k-open", ModeScan)
		var body struct{ Error ErrorInfo }
		if code := e.do("POST", "/v1/payments", PaymentRequest{Amount: 5, IdempotencyKey: "k-other"}, &body); code != 409 || body.Error.Code != "busy" {
			t.Errorf("busy: %d %+v", code, body)
		}
		e.do("POST", "/v1/payments/"+p.ID+"/cancel", nil, nil)
	})
	t.Run("unusable code keeps the payment open", func(t *testing.T) {
		p := e.create(103, "k-unknown", ModeScan)
		e.scan("hello world")
		ev.next(t, "scan", func(m map[string]any) bool { return m["result"] == "refused" })
		e.scan(wechatCode)
		if got := e.wait(p.ID, done); got.State != PaymentApproved {
			t.Fatalf("%+v", got)
		}
	})
	t.Run("second scan while one is in flight", func(t *testing.T) {
		e.waitPhase(PhaseIdle)
		e.holdOn.Store(true)
		p := e.create(104, "k-inflight", ModeScan)
		e.scan(wechatCode)
		e.waitPhase(PhaseAuthorizing)
		var body struct{ Error ErrorInfo }
		if code := e.do("POST", "/v1/payments/"+p.ID+"/cancel", nil, &body); code != 409 {
			t.Errorf("cancel while authorizing: %d", code)
		}
		e.scan(alipayCode)
		ev.next(t, "scan", func(m map[string]any) bool { return m["reason"] == "busy" })
		e.holdOn.Store(false)
		close(e.hold)
		got := e.wait(p.ID, done)
		if got.State != PaymentApproved || got.Scheme != "wechat-pay" {
			t.Fatalf("%+v", got)
		}
	})
	t.Run("printer out of paper at the end", func(t *testing.T) {
		e.waitPhase(PhaseIdle)
		time.Sleep(500 * time.Millisecond) // earlier receipts out
		e.sim.Printer.PaperOut(true)
		p := e.create(105, "k-paper", ModeScan)
		e.scan(wechatCode)
		got := e.wait(p.ID, func(p *Payment) bool { return p.Receipt != nil })
		if got.State != PaymentApproved || got.Receipt.Printed != 0 || got.Receipt.Reason != "paper-end" {
			t.Fatalf("%+v %+v", got, got.Receipt)
		}
		ev.next(t, "receipt", func(m map[string]any) bool { return m["payment_id"] == p.ID && m["reason"] == "paper-end" })
		e.sim.Printer.PaperOut(false)
	})
}

func TestAgent_RestartResumes(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Checkout.CheckWindow = Dur(2 * time.Second) })
	// A sale in flight when the agent stops stays journaled as authorizing. The next
	// start never authorizes it again: it asks the acquirer, which never got it, and at
	// the end of the check window reverses it (a tombstone: if the request was only
	// delayed, the acquirer refuses it when it arrives). No money moved.
	e.holdOn.Store(true)
	p := e.create(2500, "k-restart", ModeScan)
	e.scan(wechatCode)
	e.waitPhase(PhaseAuthorizing)
	e.shutdown()
	rec, err := e.journalState("k-restart")
	if err != nil || rec != posagent.StateAuthorizing {
		t.Fatalf("journal after stop: %v %v", rec, err)
	}
	e.holdOn.Store(false)
	close(e.hold)
	e.start()
	// Whether the held request reached the acquirer before the stop cut it is a race;
	// either way the counter and the acquirer must agree.
	got := e.wait(p.ID, done)
	switch {
	case got.State == PaymentApproved:
	case got.State == PaymentFailed && got.Error != nil && got.Error.Code == "reversed":
		if st, err := e.journalState("k-restart"); err != nil || st != posagent.StateFailed {
			t.Errorf("journal after the reversal: %v %v", st, err)
		}
	default:
		t.Fatalf("after restart %+v %+v", got, got.Error)
	}
	e.waitReversals()
	e.agree(got)

	// A payment waiting for a code is open again after a restart.
	w := e.create(2600, "k-restart-2", ModeScan)
	e.waitPhase(PhaseWaitingScan)
	e.shutdown()
	e.start()
	e.waitPhase(PhaseWaitingScan)
	e.waitScreen("26.00")
	e.scan(alipayCode)
	if got := e.wait(w.ID, done); got.State != PaymentApproved {
		t.Fatalf("reopened %+v", got)
	}
}

func TestAPI_AuthErrorsAndCORS(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Devices.Printer.Port, c.Devices.Display.Port = "", "" })
	req, _ := http.NewRequest("GET", e.url+"/v1/status", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("no token: %d", resp.StatusCode)
	}
	for _, c := range []struct {
		origin   string
		want     int
		wantPNA  string
		wantAllo string
	}{{"https://pos.example.com", 204, "true", "https://pos.example.com"}, {"https://evil.example", 403, "", ""}} {
		req, _ := http.NewRequest("OPTIONS", e.url+"/v1/payments", nil)
		req.Header.Set("Origin", c.origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Private-Network", "true")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.StatusCode; got != c.want || resp.Header.Get("Access-Control-Allow-Private-Network") != c.wantPNA || resp.Header.Get("Access-Control-Allow-Origin") != c.wantAllo {
			t.Errorf("preflight from %s: %d %v", c.origin, got, resp.Header)
		}
	}
	var body struct{ Error ErrorInfo }
	for _, c := range []struct {
		method, path string
		body         any
		status       int
		code         string
	}{
		{"POST", "/v1/payments", map[string]any{"amount": "12"}, 400, "bad_request"},
		{"POST", "/v1/payments", map[string]any{"amount": 5, "idempotency_key": "x", "tip": 1}, 400, "bad_request"},
		{"POST", "/v1/payments", map[string]any{"amount": -5, "idempotency_key": "x"}, 422, "invalid"},
		{"POST", "/v1/payments", map[string]any{"amount": 5}, 422, "invalid"},
		{"POST", "/v1/payments", map[string]any{"amount": 5, "idempotency_key": "x", "currency": "XXX1"}, 422, "invalid"},
		{"GET", "/v1/payments/nope", nil, 404, "not_found"},
		{"POST", "/v1/receipts", map[string]any{"currency": "CNY", "lines": []string{"x"}}, 503, "no_printer"},
		{"POST", "/v1/display", map[string]any{"lines": []string{"a", "b", "c"}}, 422, "invalid"},
		{"GET", "/v1/nothing", nil, 404, "not_found"},
	} {
		body.Error = ErrorInfo{}
		if got := e.do(c.method, c.path, c.body, &body); got != c.status || body.Error.Code != c.code || body.Error.Message == "" {
			t.Errorf("%s %s %v: %d %+v, want %d %s", c.method, c.path, c.body, got, body.Error, c.status, c.code)
		}
	}
	var st Status
	if code := e.do("GET", "/v1/status", nil, &st); code != 200 || st.Terminal != "T1" || len(st.Devices) != 3 {
		t.Errorf("status %d %+v", code, st)
	}
}

func TestEvents_LastEventIDReplay(t *testing.T) {
	e := newEnv(t, nil)
	first := e.subscribe("")
	p := e.create(300, "k-ev", ModeScan)
	created := first.next(t, "payment", func(m map[string]any) bool { return m["id"] == p.ID })
	first.cancel()
	e.scan(wechatCode)
	e.wait(p.ID, done)
	// Reconnecting with the id of the last event seen delivers what came after it.
	again := e.subscribe(created.ID)
	got := again.next(t, "payment", func(m map[string]any) bool { return m["id"] == p.ID && m["state"] == "approved" })
	if got.ID <= created.ID && len(got.ID) <= len(created.ID) {
		t.Errorf("replayed %s after %s", got.ID, created.ID)
	}
}

func TestMetrics(t *testing.T) {
	e := newEnv(t, nil)
	p := e.create(400, "k-m", ModeScan)
	e.scan(wechatCode)
	e.wait(p.ID, done)
	e.waitPhase(PhaseIdle)

	// The API's auth rule holds for /metrics too.
	req, _ := http.NewRequest("GET", e.url+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("/metrics without a token: %d, want 401", resp.StatusCode)
	}

	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Fatalf("/metrics: %d %s", resp.StatusCode, ct)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	// value finds the series of a family with the given labels (name=value pairs).
	value := func(name string, labels ...string) (float64, bool) {
		f := fams[name]
		if f == nil {
			return 0, false
		}
	next:
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			if len(have) != len(labels)/2 {
				continue
			}
			for i := 0; i < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue(), true
			case m.Gauge != nil:
				return m.Gauge.GetValue(), true
			case m.Summary != nil:
				return float64(m.Summary.GetSampleCount()), true
			}
		}
		return 0, false
	}
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"posagent_sales_total", []string{"outcome", "approved", "offline", "false"}, 1},
		{"posagent_scans_total", nil, 1},
		{"posagent_acquirer_authorization_seconds", nil, 1}, // the count
		{"posagent_acquirer_online", nil, 1},
		{"posagent_queue_depth", nil, -1}, // present; its value depends on the sync round
		{"posagent_queue_outstanding", nil, 0},
		{"posagent_queue_oldest_age_seconds", nil, 0},
		{"posagent_sync_lag_seconds", nil, -2}, // present
		{"posagent_receipts_total", []string{"result", "failed"}, 0},
		{"posagent_device_up", []string{"device", "printer"}, 1},
		{"posagent_device_up", []string{"device", "scanner"}, 1},
		{"posagent_device_up", []string{"device", "display"}, 1},
		{"posagent_reversals_pending", nil, 0},
		{"posagent_journal_errors_total", nil, 0},
		{"posagent_clock_skew_seconds", nil, -2}, // present
	} {
		got, ok := value(c.name, c.labels...)
		if !ok || (c.want >= 0 && got != c.want) {
			t.Errorf("%s%v = %v (present %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	if got := fams["posagent_acquirer_authorization_seconds"].GetType(); got != dto.MetricType_SUMMARY {
		t.Errorf("authorization seconds: %v, want a summary", got)
	}
	if len(fams) != 13 {
		var names []string
		for n := range fams {
			names = append(names, n)
		}
		t.Errorf("%d families, want the agent's 13 only: %v", len(fams), names)
	}
}

// An offline sale that the acquirer declines after the backlog is uploaded (amount ending
// in 61: the results feed says declined) catches up: the payment is declined, a "sync"
// event with declined_after_upload is raised, and a notice is printed for the cashier.
func TestAgent_DeclinedAfterUpload(t *testing.T) {
	e := newEnv(t, nil)
	ev := e.subscribe("")
	e.down.Store(true)
	ev.next(t, "acquirer", func(m map[string]any) bool { return m["online"] == false })

	p := e.create(2061, "k-later", ModeScan)
	e.scan(cpmCode)
	stored := e.wait(p.ID, done)
	if stored.State != PaymentStored || !stored.Offline || stored.Sequence == 0 {
		t.Fatalf("offline sale %+v", stored)
	}
	if job, err := e.sim.Printer.WaitJob(context.Background(), 1); err != nil || !strings.Contains(job.Text, "OFFLINE SALE") {
		t.Fatalf("offline receipt: %v %v", err, job)
	}

	e.down.Store(false)
	// The payment catches up, then the decline is announced.
	ev.next(t, "payment", func(m map[string]any) bool { return m["id"] == p.ID && m["state"] == "declined" })
	declined := ev.next(t, "sync", func(m map[string]any) bool { return m["event"] == "declined_after_upload" })
	m := declined.Data.(map[string]any)
	if m["payment_id"] != p.ID || m["sale_id"] != stored.SaleID || m["amount"] != float64(2061) || m["currency"] != "CNY" ||
		m["sequence"] != float64(stored.Sequence) || m["reference"] != "R-k-later" || m["reason"] == "" {
		t.Errorf("declined_after_upload event %v", m)
	}
	got := e.wait(p.ID, func(p *Payment) bool { return p.State == PaymentDeclined })
	if got.Error == nil || got.Error.Code != "declined_after_upload" || !got.Offline {
		t.Errorf("payment after upload %+v %+v", got, got.Error)
	}

	// The notice: the second job after the sale's receipt(s).
	var notice string
	deadline := time.Now().Add(10 * time.Second)
	for notice == "" && time.Now().Before(deadline) {
		for _, j := range e.sim.Printer.Jobs() {
			if strings.Contains(j.Text, "PAYMENT DECLINED") {
				notice = j.Text
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, want := range []string{"after upload", "20.61", "Not collected", fmt.Sprintf("Sale no.: %d", stored.Sequence), "Ref: R-k-later", "not collected"} {
		if !strings.Contains(notice, want) {
			t.Errorf("decline notice lacks %q:\n%s", want, notice)
		}
	}
	if strings.Contains(notice, cpmCode) {
		t.Errorf("decline notice shows the credential:\n%s", notice)
	}
	if !strings.Contains(e.logs(), "offline sale declined after upload") {
		t.Errorf("no log line for the decline")
	}
}

// A peripheral unplugged in the middle of a sale: the sale keeps its defined outcome and
// the device comes back on its own.
func TestAgent_UnpluggedMidSale(t *testing.T) {
	t.Run("scanner while waiting for the code", func(t *testing.T) {
		e := newEnv(t, nil)
		ev := e.subscribe("")
		p := e.create(700, "k-unplug-scanner", ModeScan)
		e.waitPhase(PhaseWaitingScan)
		// Half a code on the line, then the cable is pulled: the payment keeps waiting,
		// and the half code is not glued to the next one.
		if err := e.sim.Scanner.Scan(wechatCode[:9], possim.ScanOptions{Suffix: scanner.SuffixNone}); err != nil {
			t.Fatal(err)
		}
		if err := e.sim.Unplug(possim.ScannerName, 300*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		ev.next(t, "device", func(m map[string]any) bool { return m["device"] == "scanner" && m["connected"] == false })
		ev.next(t, "device", func(m map[string]any) bool { return m["device"] == "scanner" && m["connected"] == true })
		if got := e.wait(p.ID, func(*Payment) bool { return true }); got.State != PaymentWaiting {
			t.Fatalf("payment after the unplug %+v", got)
		}
		e.scan(wechatCode)
		got := e.wait(p.ID, done)
		if got.State != PaymentApproved || got.Scheme != "wechat-pay" {
			t.Fatalf("payment %+v %+v", got, got.Error)
		}
		var st Status
		e.do("GET", "/v1/status", nil, &st)
		for _, d := range st.Devices {
			if d.Device == "scanner" && !d.Connected {
				t.Errorf("status: scanner %+v", d)
			}
		}
	})
	t.Run("printer while printing the receipt", func(t *testing.T) {
		// At 9600 baud the receipt takes over a second on the line: time to pull the cable.
		e := newEnv(t, func(c *Config) { c.Devices.Printer.Baud = 9600 })
		ev := e.subscribe("")
		p := e.create(800, "k-unplug-printer", ModeScan)
		e.scan(wechatCode)
		ev.next(t, "payment", func(m map[string]any) bool { return m["id"] == p.ID && m["state"] == "approved" })
		time.Sleep(300 * time.Millisecond)
		if err := e.sim.Unplug(possim.PrinterName, 500*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		// The sale stays approved; the receipt is reported as not printed.
		rev := ev.next(t, "receipt", func(m map[string]any) bool { return m["payment_id"] == p.ID })
		if m := rev.Data.(map[string]any); m["printed"] != float64(0) || m["error"] == nil {
			t.Errorf("receipt event %v", m)
		}
		got := e.wait(p.ID, func(p *Payment) bool { return p.Receipt != nil })
		if got.State != PaymentApproved || got.Receipt.Printed != 0 || got.Receipt.Error == "" {
			t.Fatalf("payment %+v %+v", got, got.Receipt)
		}
		ev.next(t, "device", func(m map[string]any) bool { return m["device"] == "printer" && m["connected"] == true })
		// Back: the POS app prints the receipt again.
		var out map[string]any
		rc := map[string]any{"currency": "CNY", "lines": []string{"REPRINT R-k-unplug-printer"}, "totals": []map[string]any{{"label": "Total", "amount": 800}}}
		if code := e.do("POST", "/v1/receipts", rc, &out); code != 200 && code != 201 {
			t.Fatalf("reprint: %d %v", code, out)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			jobs := e.sim.Printer.Jobs()
			if len(jobs) > 0 && strings.Contains(jobs[len(jobs)-1].Text, "REPRINT R-k-unplug-printer") {
				break
			}
			if time.Now().After(deadline) {
				for _, j := range jobs {
					t.Logf("job:\n%s", j.Text)
				}
				t.Fatalf("reprint not on paper; %d jobs; reply %v\n%s", len(jobs), out, e.logs())
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}
