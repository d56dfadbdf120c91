package device

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/posagent/posagent"
	"github.com/posagent/posagent/checkout"
	"github.com/posagent/posagent/drivers/display"
	"github.com/posagent/posagent/drivers/scanner"
	"github.com/posagent/posagent/offline"
	"github.com/posagent/posagent/qr"
	"github.com/posagent/posagent/sync/uplink"
	"github.com/posagent/posagent/sync/wire"
)

// session is one payment being decided, and what its goroutine listens to. The open
// payment at the counter is a foreground session (a.cur); a sale a restart or the
// reconciler found unresolved, whose customer is gone, is resolved in a background
// session (no display, no phase, no receipts).
type session struct {
	p          *Payment         // the API's view; fields guarded by a.mu
	m          checkout.Payment // the core's state; only the session's goroutine touches it
	scans      chan scanner.Scan
	cancel     chan struct{}
	done       chan struct{}
	background bool

	// the scanned code, in memory only (journaled encrypted)
	cls        qr.Classification
	method     posagent.Method
	credential string
	captured   time.Time // the sale record's capture time

	// shown is closed when the session's last screen is on the display: screens are
	// written in order, but the sale does not wait for the display's serial line.
	shown <-chan struct{}
}

// showAfter puts sc on the display after the session's screens before it, and returns at
// once: at the display's 9600 baud a screen takes 50 ms on the line, which the sale
// (authorizing, say) must not wait for. finish waits for the last one before the next
// payment can put up its own.
func (a *Agent) showAfter(s *session, sc display.Screen) {
	prev := s.shown
	done := make(chan struct{})
	s.shown = done
	go func() {
		if prev != nil {
			<-prev
		}
		a.show(sc)
		close(done)
	}()
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// coreOf rebuilds the core's state of a payment that has none stored (an old payment
// store's payments).
func coreOf(p *Payment) checkout.Payment {
	return checkout.Payment{Mode: p.Mode, State: p.State, Journaled: p.SaleID != "", ExpiresAt: p.ExpiresAt,
		OnlineOnly: p.Method == string(posagent.MethodWalletCode)}
}

func (a *Agent) rules() checkout.Rules {
	r := checkout.DefaultRules
	r.CheckWindow = a.cfg.Checkout.CheckWindow.D()
	r.PendingWindow = a.cfg.Checkout.PendingWindow.D()
	r.OrderPoll = a.cfg.Checkout.OrderPoll.D()
	r.QueryMax = max(min(r.QueryMax, r.CheckWindow/4), r.QueryFirst)
	return r
}

// CreatePayment opens a payment, or returns the one created before under the same
// idempotency key (replay true). A different payment under a used key is a conflict, and
// so is a new payment while another is open.
func (a *Agent) CreatePayment(ctx context.Context, req PaymentRequest) (*Payment, bool, error) {
	cur, err := req.validate(a.cfg.Checkout.Currency)
	if err != nil {
		return nil, false, err
	}
	a.createMu.Lock()
	defer a.createMu.Unlock()
	if p, err := a.payment(ctx, "", req.IdempotencyKey); err == nil {
		if p.Amount != req.Amount || p.Currency != req.Currency || p.Mode != req.Mode || p.Reference != req.Reference {
			return nil, false, &apiError{409, "idempotency_conflict", fmt.Sprintf("idempotency key %q was used for another payment (%s)", req.IdempotencyKey, p.ID)}
		}
		return p, true, nil
	} else if !errors.Is(err, errNotFound) {
		return nil, false, &apiError{503, "journal", "cannot read the journal: " + err.Error()}
	}
	a.mu.Lock()
	if s := a.cur; s != nil && a.phase == PhaseFinishing {
		// The last payment has its outcome and is being wrapped up (display): a POS app
		// that opens the next one on the outcome's event waits a moment, not a 409.
		a.mu.Unlock()
		select {
		case <-s.done:
		case <-time.After(5 * time.Second):
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
		a.mu.Lock()
	}
	if a.cur != nil {
		id := a.cur.p.ID
		a.mu.Unlock()
		return nil, false, &apiError{409, "busy", "payment " + id + " is open: finish or cancel it first"}
	}
	if a.stopping {
		a.mu.Unlock()
		return nil, false, &apiError{503, "unavailable", "the agent is shutting down"}
	}
	a.mu.Unlock()

	now := a.now()
	id, _ := uuid.NewV7()
	p := &Payment{
		ID: id.String(), State: PaymentWaiting, Amount: req.Amount, Currency: cur.Code, Mode: req.Mode,
		Reference: req.Reference, IdempotencyKey: req.IdempotencyKey, CreatedAt: now.UTC(), UpdatedAt: now.UTC(),
	}
	m := checkout.Payment{Mode: req.Mode, State: checkout.Waiting}
	if req.Mode == ModeQR {
		p.Method = string(posagent.MethodMerchantQR)
		p.ExpiresAt = now.Add(a.cfg.Checkout.QRTimeout.D()).UTC()
		p.OrderReference = req.Reference
		if p.OrderReference == "" {
			p.OrderReference = a.cfg.Terminal + "-" + strconv.FormatInt(now.UnixMilli(), 36)
			if len(p.OrderReference) > 25 {
				p.OrderReference = p.OrderReference[len(p.OrderReference)-25:]
			}
		}
		payload, err := a.cfg.merchantCode(p.amount(), p.OrderReference)
		if err != nil {
			return nil, false, &apiError{422, "qr_unavailable", "cannot build the merchant-presented code: " + err.Error()}
		}
		p.QR = payload
		m.ExpiresAt, m.Journaled, m.OnlineOnly = p.ExpiresAt, true, true
		m.NextPoll = now.Add(a.cfg.Checkout.OrderPoll.D())
		// A merchant-presented sale is journaled now, with its payment: the code is the sale.
		if a.journal.NeedsRebase() != "" {
			a.rebase(ctx)
		}
		rec, _, err := a.journal.AppendWith(ctx, offline.NewSale{
			IdempotencyKey: p.IdempotencyKey, Reference: p.OrderReference, Amount: p.amount(), Method: posagent.MethodMerchantQR,
		}, p.row(m))
		if err != nil {
			return a.refuseCreate(ctx, req, err)
		}
		p.SaleID, p.Sequence = rec.ID, rec.Sequence
	} else {
		p.ExpiresAt = now.Add(a.cfg.Checkout.ScanTimeout.D()).UTC()
		m.ExpiresAt = p.ExpiresAt
		if err := a.journal.CreatePayment(ctx, p.row(m)); err != nil {
			return a.refuseCreate(ctx, req, err)
		}
	}
	s := a.newSession(p, m, false)
	a.start(s, checkout.Tick{})
	return a.snapshot(p), false, nil
}

// refuseCreate answers a create the journal could not take.
func (a *Agent) refuseCreate(ctx context.Context, req PaymentRequest, err error) (*Payment, bool, error) {
	if errors.Is(err, offline.ErrPaymentExists) || errors.Is(err, offline.ErrConflict) {
		// Created meanwhile under the same key (another process, or a sale journaled
		// before a crash): that one is the answer, never a second payment.
		if p, lerr := a.payment(ctx, "", req.IdempotencyKey); lerr == nil {
			if p.Amount != req.Amount || p.Currency != req.Currency || p.Mode != req.Mode {
				return nil, false, &apiError{409, "idempotency_conflict", fmt.Sprintf("idempotency key %q was used for another payment (%s)", req.IdempotencyKey, p.ID)}
			}
			return p, true, nil
		}
		return nil, false, &apiError{409, "idempotency_conflict", fmt.Sprintf("idempotency key %q was already used for a sale", req.IdempotencyKey)}
	}
	e := journalError(err)
	return nil, false, &apiError{503, e.Code, "cannot record the payment: " + e.Message}
}

func (a *Agent) newSession(p *Payment, m checkout.Payment, background bool) *session {
	return &session{p: p, m: m, scans: make(chan scanner.Scan, 1), cancel: make(chan struct{}), done: make(chan struct{}), background: background}
}

// start runs a session's goroutine, beginning with event first. A foreground session
// becomes the counter's open payment.
func (a *Agent) start(s *session, first checkout.Event) {
	if !s.background {
		a.mu.Lock()
		a.cur = s
		switch {
		case s.p.Mode == ModeQR:
			a.setPhase(PhaseWaitingCustomer)
		case s.m.State == checkout.Waiting:
			a.setPhase(PhaseWaitingScan)
		default:
			a.setPhase(PhaseAuthorizing)
		}
		a.mu.Unlock()
		a.publishPayment(s.p)
		if s.m.State == checkout.Waiting {
			if s.p.Mode == ModeQR {
				a.show(screenFor(checkout.ScreenPayQR, s.p))
				if a.cfg.Checkout.QRSlip && a.dev.printer != nil && s.p.UpdatedAt.Equal(s.p.CreatedAt) {
					a.wg.Add(1)
					go func(p *Payment) { defer a.wg.Done(); a.printSlip(p) }(a.snapshot(s.p))
				}
			} else {
				a.show(screenFor(checkout.ScreenScan, s.p))
			}
		}
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		defer close(s.done)
		a.drive(s, first)
	}()
}

// drive feeds the session's events to the checkout core and performs its effects until
// the payment is over or the agent stops (an open payment is resumed at the next start).
func (a *Agent) drive(s *session, first checkout.Event) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	cancel := s.cancel
	rules := a.rules()
	queue := []checkout.Event{first}
	for {
		for len(queue) > 0 {
			ev := queue[0]
			queue = queue[1:]
			before := s.m.State
			m, effects := checkout.Step(s.m, ev, a.now(), rules)
			s.m = m
			committed := false
			for _, e := range effects {
				if _, ok := e.(checkout.Commit); ok {
					committed = true
				}
			}
			if !committed {
				a.update(func() { a.applyCore(s) }) // else commit applies it once journaled
			}
			if m.State != before && m.State.Open() && !committed {
				a.publishPayment(s.p)
			}
			for _, eff := range effects {
				next, stop := a.perform(s, eff, timer)
				if stop {
					return
				}
				if next != nil {
					queue = append(queue, next)
				}
			}
			if !s.m.State.Open() {
				return
			}
		}
		select {
		case <-a.stopCh:
			return // the payment stays open in the journal; the next start resumes it
		case <-cancel:
			cancel = nil
			queue = append(queue, checkout.Cancel{})
		case sc := <-s.scans:
			queue = append(queue, a.scanned(s, sc))
		case <-timer.C:
			queue = append(queue, checkout.Tick{})
		}
	}
}

// scanned turns a code read by the scanner into the core's event.
func (a *Agent) scanned(s *session, sc scanner.Scan) checkout.Event {
	cls := sc.Classification
	ev := checkout.Scanned{OnlineOnly: cls.OnlineOnly, AcquirerOnline: a.online.Load()}
	switch cls.Kind {
	case qr.KindWalletCode:
		s.method = posagent.MethodWalletCode
	case qr.KindCPM:
		s.method = posagent.MethodEMVCPM
	default:
		ev.Reason = refusalFor(cls)
		return ev
	}
	ev.Usable, ev.Name = true, nameOf(cls)
	s.cls, s.credential = cls, cls.Code
	name := cls.Name
	if name == "" && cls.Kind == qr.KindCPM {
		name = "EMV QR " + cls.Scheme
	}
	p := s.p
	a.update(func() {
		p.Method, p.Scheme, p.SchemeName, p.Credential = string(s.method), cls.Scheme, name, cls.Masked
	})
	return ev
}

// perform does one effect of the core and returns the event that reports its result, if
// any; stop is true when the agent is shutting down in the middle of it.
func (a *Agent) perform(s *session, eff checkout.Effect, timer *time.Timer) (next checkout.Event, stop bool) {
	p := s.p
	ctx := context.Background()
	switch eff := eff.(type) {
	case checkout.AppendSale:
		sale := offline.NewSale{
			IdempotencyKey: p.IdempotencyKey, Reference: p.Reference, Amount: p.amount(), Method: s.method,
			Scheme: posagent.Scheme(s.cls.Scheme), Credential: s.credential, Offline: eff.Offline,
		}
		a.update(func() { p.Offline = eff.Offline })
		if a.journal.NeedsRebase() != "" {
			a.rebase(ctx) // the append says why, if it still cannot be
		}
		rec, _, err := a.journal.AppendWith(ctx, sale, a.row(s))
		if err != nil {
			a.update(func() { p.Offline = false })
			return checkout.JournalFailed{Err: *journalError(err)}, false
		}
		a.update(func() { p.SaleID, p.Sequence = rec.ID, rec.Sequence })
		s.captured = rec.CapturedAt
		return checkout.Journaled{Offline: rec.State == posagent.StateStored}, false

	case checkout.Authorize:
		return a.authorize(s)

	case checkout.Query:
		var st wire.AuthorizationStatus
		if next, stop := a.ask(func(ctx context.Context) (err error) {
			st, err = a.authClient.AuthorizationStatus(ctx, p.SaleID)
			return err
		}); next != nil || stop {
			return next, stop
		}
		if st.AuthCode != "" {
			a.update(func() { p.AuthCode = st.AuthCode })
		}
		a.log.Info("authorization status", "payment", p.ID, "sequence", p.Sequence, "state", st.State)
		return checkout.Answered{Decision: st.State, Reason: st.Reason}, false

	case checkout.StoreOffline:
		a.update(func() { p.Offline = true })
		err := a.journal.Commit(ctx, offline.SaleChange{SaleID: p.SaleID, To: posagent.StateStored, Note: "no online answer: accepted offline"}, a.row(s))
		if err != nil {
			a.update(func() { p.Offline = false })
			return checkout.JournalFailed{Err: *journalError(err)}, false
		}
		return checkout.StoredOffline{}, false

	case checkout.PollOrder:
		var o wire.Order
		if next, stop := a.ask(func(ctx context.Context) (err error) {
			o, err = a.client.Order(ctx, p.OrderReference)
			return err
		}); next != nil || stop {
			return next, stop
		}
		if o.State == "paid" && o.Scheme != "" {
			a.update(func() { p.Scheme = o.Scheme })
		}
		return checkout.OrderAnswered{State: o.State}, false

	case checkout.Commit:
		a.commit(s, eff)

	case checkout.Show:
		if !s.background {
			a.showAfter(s, screenFor(eff.Screen, p))
		}

	case checkout.RefuseScan:
		a.events.publish("scan", map[string]any{"result": "refused", "payment_id": p.ID, "kind": s.cls.Kind, "reason": eff.Reason})
		a.log.Info("scan refused", "payment", p.ID, "reason", eff.Reason)
		a.showAfter(s, display.Screen{display.Fit("CODE NOT ACCEPTED"), display.Fit("SHOW PAYMENT CODE")})

	case checkout.Schedule:
		timer.Stop()
		timer.Reset(max(eff.At.Sub(a.now()), 0))

	case checkout.Finish:
		a.finish(s)
	}
	return nil, false
}

// ask makes one status request of the acquirer for the core (a query, an order poll),
// bounded by the request timeout: a failure is QueryFailed, a shutdown in the middle
// stops the session; nil, false means it answered.
func (a *Agent) ask(call func(context.Context) error) (next checkout.Event, stop bool) {
	ctx, cancel := context.WithTimeout(a.hardCtx, a.cfg.Acquirer.RequestTimeout.D())
	err := call(ctx)
	cancel()
	if err != nil {
		if a.hardCtx.Err() != nil {
			return nil, true
		}
		a.noteAcquirerError(err)
		return checkout.QueryFailed{Message: err.Error()}, false
	}
	a.setOnline(true, nil)
	return nil, false
}

// row is the session's payment as the journal keeps it.
func (a *Agent) row(s *session) *offline.PaymentRow {
	a.mu.Lock()
	defer a.mu.Unlock()
	return s.p.row(s.m)
}

// applyCore shows the core's state in the API's payment (and moves the counter's phase);
// the caller holds a.mu. A state that the core commits is applied once it is journaled,
// so the POS app never sees an outcome the journal does not have.
func (a *Agent) applyCore(s *session) {
	if !s.background && a.cur == s && a.phase == PhaseWaitingScan && s.m.State != checkout.Waiting && s.m.State.Open() {
		a.setPhase(PhaseAuthorizing)
	}
	applyCoreTo(s.p, s.m, a.now())
}

// applyCoreTo shows the core's state m in the payment p; the caller holds a.mu.
func applyCoreTo(p *Payment, m checkout.Payment, now time.Time) {
	if p.State != m.State {
		p.UpdatedAt = now.UTC()
	}
	p.State, p.Error = m.State, m.Error
	p.ResolveBy = nil
	if m.State == checkout.Checking || m.State == checkout.PendingCustomer {
		t := m.ResolveBy.UTC()
		p.ResolveBy = &t
	}
	if !m.State.Open() && p.CompletedAt == nil {
		t := now.UTC()
		p.CompletedAt = &t
	}
}

// commit writes the payment and, with it, the sale's change. A journal that cannot be
// written is reported (log, event, metric), never ignored; the sale record keeps its
// last state on disk, which the reconciler resolves at the next start.
func (a *Agent) commit(s *session, c checkout.Commit) {
	a.mu.Lock()
	cp := *s.p
	applyCoreTo(&cp, s.m, a.now()) // on a copy: the row to write; the API sees it once journaled
	row := cp.row(s.m)
	a.mu.Unlock()
	p := s.p
	ch := offline.SaleChange{SaleID: p.SaleID, To: c.Sale, Note: c.Note, Reverse: c.Reverse}
	if p.SaleID == "" {
		ch = offline.SaleChange{}
	}
	err := a.journal.Commit(context.Background(), ch, row)
	a.update(func() { a.applyCore(s) })
	if s.m.State.Open() {
		a.publishPayment(p) // the final state is Finish's to announce
	}
	if err != nil {
		a.log.Error("journal: payment not recorded; the reconciler resolves it at the next start", "payment", p.ID,
			"sequence", p.Sequence, "state", s.m.State, "err", err)
		a.events.publish("journal", map[string]any{"payment_id": p.ID, "error": err.Error()})
		a.metrics.journalError()
		return
	}
	if c.Reverse != "" {
		a.log.Warn("authorization reversed", "payment", p.ID, "sequence", p.Sequence, "reason", c.Reverse)
		a.kickReconcile()
	}
}

// authorize sends the journaled sale for online authorization.
func (a *Agent) authorize(s *session) (checkout.Event, bool) {
	p := s.p
	ctx, cancel := context.WithTimeout(a.hardCtx, a.cfg.Acquirer.AuthTimeout.D())
	defer cancel()
	start := time.Now()
	resp, err := a.authClient.Authorize(ctx, wire.AuthorizationRequest{
		ID: p.SaleID, Sequence: p.Sequence, IdempotencyKey: p.IdempotencyKey, Reference: p.Reference, CapturedAt: s.captured,
		Amount: p.Amount, Currency: p.Currency, Method: string(s.method), Scheme: s.cls.Scheme, Credential: s.credential,
	})
	a.metrics.observeAcquirer(time.Since(start))
	if err == nil {
		a.setOnline(true, nil)
		if resp.AuthCode != "" {
			a.update(func() { p.AuthCode = resp.AuthCode })
		}
		return checkout.Answered{Decision: string(resp.Decision), Reason: resp.Reason}, false
	}
	if a.hardCtx.Err() != nil {
		// Stopped in the middle: the sale stays authorizing in the journal; the next start
		// resolves it by querying the acquirer.
		a.log.Warn("shutdown during authorization; resolved at the next start", "payment", p.ID, "sequence", p.Sequence)
		return nil, true
	}
	a.noteAcquirerError(err)
	var ae *uplink.APIError
	refused := errors.As(err, &ae) && ae.Status/100 == 4 && ae.Status != http.StatusTooManyRequests && ae.Status != http.StatusRequestTimeout
	ev := checkout.AuthFailed{MaybeSent: !uplink.Unsent(err), Refused: refused, Message: err.Error()}
	a.log.Warn("authorization without an answer", "payment", p.ID, "sequence", p.Sequence, "maybe_sent", ev.MaybeSent, "refused", refused, "err", err)
	return ev, false
}

// noteAcquirerError marks the acquirer offline when err says it did not answer.
func (a *Agent) noteAcquirerError(err error) {
	if uplink.Temporary(err) || errors.Is(err, context.DeadlineExceeded) {
		a.setOnline(false, err)
	}
}

// screenFor is the customer display's screen for a core screen.
func screenFor(sc checkout.Screen, p *Payment) display.Screen {
	switch sc {
	case checkout.ScreenScan:
		return display.ScanScreen(p.amount())
	case checkout.ScreenPayQR:
		return display.Screen{display.Fit("SCAN QR TO PAY"), display.Row("TOTAL", display.FormatAmount(p.amount()))}
	case checkout.ScreenAuthorizing:
		return display.Screen{display.Fit("PROCESSING..."), display.Row("TOTAL", display.FormatAmount(p.amount()))}
	case checkout.ScreenChecking:
		return display.Screen{display.Fit("CHECKING PAYMENT"), display.Fit("PLEASE WAIT")}
	case checkout.ScreenConfirm:
		return display.Screen{display.Fit("CONFIRM ON YOUR PHONE"), display.Row("TOTAL", display.FormatAmount(p.amount()))}
	}
	return display.Screen{display.Fit("CODE NOT ACCEPTED"), display.Fit("SHOW PAYMENT CODE")}
}

// finish ends the payment at the counter: the display and the event stream first (what
// the customer and the cashier wait for), then the receipts. The journal has it already.
func (a *Agent) finish(s *session) {
	p := s.p
	state, e := s.m.State, s.m.Error
	a.mu.Lock()
	if !s.background {
		a.setPhase(PhaseFinishing)
	}
	now := a.now().UTC()
	p.UpdatedAt = now
	if p.CompletedAt == nil {
		p.CompletedAt = &now
	}
	a.mu.Unlock()
	a.metrics.sale(string(state), p.Offline)
	a.log.Info("payment "+string(state), "payment", p.ID, "amount", p.amount().String(), "currency", p.Currency,
		"method", p.Method, "scheme", p.Scheme, "offline", p.Offline, "sequence", p.Sequence, "code", errCode(e), "background", s.background)
	if s.background {
		a.publishPayment(p)
		return
	}
	var screen display.Screen
	switch {
	case state == PaymentApproved:
		screen = display.ApprovedScreen(p.amount())
	case state.Accepted():
		screen = display.Screen{display.Fit("APPROVED (OFFLINE)"), display.Row("", display.FormatAmount(p.amount()))}
	case state == PaymentCanceled:
		screen = display.Screen{display.Fit("CANCELED"), ""}
	default:
		reason := "PAYMENT FAILED"
		if e != nil {
			reason = e.Message
		}
		screen = display.DeclinedScreen(reason)
	}
	// The display (a serial line at the display's pace) and the event stream at once.
	a.showAfter(s, screen)
	a.publishPayment(p)
	<-s.shown // before the next payment can put its own screen up
	a.mu.Lock()
	a.setPhase(PhaseIdle)
	a.cur = nil
	a.mu.Unlock()
	if state.Accepted() {
		// The receipts print while the next sale may already open; the printer takes one
		// job at a time, and the outcome is an event and part of the payment.
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			a.printReceipts(p)
		}()
	}
}

// savePayment writes the payment's fields that change after its outcome (the receipt).
func (a *Agent) savePayment(p *Payment) {
	a.mu.Lock()
	row := p.row(coreOf(p))
	a.mu.Unlock()
	if err := a.journal.SavePayment(context.Background(), row); err != nil {
		a.log.Error("journal: payment not updated", "payment", p.ID, "err", err)
		a.metrics.journalError()
	}
}

// CancelPayment cancels the open payment while it waits for the customer, or while its
// outcome is being checked or the customer confirms in the wallet (by reversing it). A
// payment whose authorization is in flight cannot be canceled (money may be moving): that
// is a conflict, as is one already over.
func (a *Agent) CancelPayment(ctx context.Context, id string) (*Payment, error) {
	a.mu.Lock()
	if s := a.cur; s != nil && s.p.ID == id && a.phase == PhaseFinishing {
		// It has its outcome and is being wrapped up: cancel what it ended as.
		a.mu.Unlock()
		select {
		case <-s.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		a.mu.Lock()
	}
	s := a.cur
	if s == nil || s.p.ID != id {
		a.mu.Unlock()
		p, err := a.payment(ctx, id, "")
		if err != nil {
			return nil, err
		}
		if p.State == PaymentCanceled {
			return p, nil // canceling twice is harmless
		}
		if p.State == PaymentStored && p.SaleID != "" {
			return a.void(ctx, p)
		}
		hint := "only an open payment, or one stored offline and not yet sent, can be canceled"
		if p.State == PaymentApproved || p.State == PaymentUploading {
			hint = "refund it instead (POST /v1/payments/" + id + "/refunds)"
		}
		return nil, &apiError{409, "not_cancelable", "payment " + id + " is " + string(p.State) + ": " + hint}
	}
	if s.p.State == PaymentAuthorizing || a.phase == PhaseFinishing {
		st := s.p.State
		a.mu.Unlock()
		return nil, &apiError{409, "not_cancelable", "payment " + id + " is " + string(st) + ": wait for its outcome"}
	}
	select {
	case <-s.cancel:
	default:
		close(s.cancel)
	}
	a.mu.Unlock()
	select {
	case <-s.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	p := a.snapshot(s.p)
	if p.State != PaymentCanceled {
		return p, &apiError{409, "not_cancelable", "payment " + id + " ended " + string(p.State) + " before the cancel"}
	}
	return p, nil
}

var errNotFound = errors.New("no such payment")

// payment finds a payment by id or idempotency key: the open one from memory, the others
// from the journal (an offline sale's later state, and a decline after upload, included).
func (a *Agent) payment(ctx context.Context, id, key string) (*Payment, error) {
	a.mu.Lock()
	if s := a.cur; s != nil && ((id != "" && s.p.ID == id) || (key != "" && s.p.IdempotencyKey == key)) {
		p := *s.p
		a.mu.Unlock()
		return &p, nil
	}
	a.mu.Unlock()
	var row offline.PaymentRow
	var err error
	if id != "" {
		row, err = a.journal.Payment(ctx, id)
	} else {
		row, err = a.journal.PaymentByKey(ctx, key)
	}
	if errors.Is(err, offline.ErrNotFound) {
		return nil, errNotFound
	} else if err != nil {
		return nil, err
	}
	p, _, err := decodePayment(row)
	if err != nil {
		return nil, err
	}
	if p.Offline && p.SaleID != "" && (p.State == PaymentDeclined || p.State == PaymentFailed) && (p.Error == nil || p.Error.Code == "") {
		if rec, err := a.journal.Get(ctx, p.SaleID); err == nil {
			p.Error = &ErrorInfo{Code: "declined_after_upload", Message: rec.LastError}
		}
	}
	return p, nil
}

// resume reopens what a restart found: the journal's open payments. A payment whose sale
// has an outcome catches up; one whose sale is still authorizing is resolved by querying
// the acquirer (the last one at the counter, older ones in the background); the last one
// still waiting for the customer opens again.
func (a *Agent) resume(ctx context.Context) error {
	rows, err := a.journal.OpenPayments(ctx)
	if err != nil {
		return fmt.Errorf("read open payments: %w", err)
	}
	for i, row := range rows {
		p, m, err := decodePayment(row)
		if err != nil {
			a.log.Error("open payment unreadable; its sale is resolved by the reconciler", "payment", row.ID, "err", err)
			continue
		}
		if m.Mode == "" {
			m = coreOf(p)
		}
		var rec *offline.Record
		if p.SaleID != "" {
			if r, err := a.journal.Get(ctx, p.SaleID); err == nil {
				rec = &r
				p.Sequence, p.Offline = r.Sequence, r.Offline
				m.Journaled = true
			} else if !errors.Is(err, offline.ErrNotFound) {
				return fmt.Errorf("resume payment %s: %w", p.ID, err)
			}
		}
		last := i == len(rows)-1
		s := a.newSession(p, m, !last)
		switch {
		case rec != nil && rec.State != posagent.StateAuthorizing:
			// The outcome was journaled before the stop: the payment catches up.
			a.catchUp(s, *rec)
		case rec != nil && p.Mode == ModeScan:
			if cred, err := a.journal.Credential(ctx, rec.ID); err == nil {
				s.cls, s.credential, s.method = qr.Classify(cred), cred, rec.Method
			}
			m.State = checkout.Authorizing
			if p.State == PaymentChecking || p.State == PaymentPendingCustomer {
				m.State = p.State
			}
			s.m = m
			a.log.Info("resolving a sale found authorizing at start", "payment", p.ID, "sequence", rec.Sequence, "background", s.background)
			a.start(s, checkout.Resumed{})
		case rec != nil: // a merchant-presented order: polled again (in the background if superseded)
			a.start(s, checkout.Resumed{})
		case !last:
			a.failUnstarted(s, &ErrorInfo{Code: "superseded", Message: "the agent restarted with a later payment open"})
		case !a.now().Before(p.ExpiresAt):
			a.failUnstarted(s, &ErrorInfo{Code: "timeout", Message: "the payment expired while the agent was stopped"})
		default:
			a.log.Info("payment reopened after restart", "payment", p.ID, "mode", p.Mode)
			a.start(s, checkout.Tick{})
		}
	}
	return nil
}

// catchUp ends a payment whose sale reached an outcome before the stop.
func (a *Agent) catchUp(s *session, rec offline.Record) {
	p := s.p
	now := a.now().UTC()
	p.State, p.UpdatedAt, p.CompletedAt = paymentState(rec.State), now, &now
	if rec.State == posagent.StateUploading || rec.State == posagent.StateStored {
		p.State = PaymentStored
	}
	if rec.LastError != "" && !p.State.Accepted() {
		p.Error = &ErrorInfo{Code: string(rec.State), Message: rec.LastError}
	}
	s.m.State, s.m.Error = p.State, p.Error
	a.savePaymentCore(s)
	a.publishPayment(p)
}

// failUnstarted ends a payment that has no sale and will not be resumed.
func (a *Agent) failUnstarted(s *session, e *ErrorInfo) {
	p := s.p
	now := a.now().UTC()
	p.State, p.Error, p.UpdatedAt, p.CompletedAt = PaymentFailed, e, now, &now
	s.m.State, s.m.Error = p.State, e
	a.savePaymentCore(s)
	a.publishPayment(p)
	a.metrics.sale(string(PaymentFailed), false)
}

func (a *Agent) savePaymentCore(s *session) {
	if err := a.journal.SavePayment(context.Background(), a.row(s)); err != nil {
		a.log.Error("journal: payment not updated", "payment", s.p.ID, "err", err)
		a.metrics.journalError()
	}
}

// void cancels an offline sale that has not been sent: the record becomes canceled in the
// journal (it is still uploaded, so the chain has no hole, and the acquirer captures
// nothing). One already being sent cannot be voided: refund it once it is approved.
func (a *Agent) void(ctx context.Context, p *Payment) (*Payment, error) {
	now := a.now().UTC()
	p.State, p.Error, p.UpdatedAt = PaymentCanceled, &ErrorInfo{Code: "voided", Message: "voided at the counter before it was sent: no money is taken"}, now
	err := a.journal.Commit(ctx, offline.SaleChange{SaleID: p.SaleID, To: posagent.StateCanceled, Note: "voided at the counter"}, p.row(coreOf(p)))
	if errors.Is(err, posagent.ErrTransition) {
		return nil, &apiError{409, "not_cancelable", "payment " + p.ID + " is already being sent to the acquirer: refund it once it is approved"}
	} else if err != nil {
		e := journalError(err)
		return nil, &apiError{503, e.Code, "cannot void the payment: " + e.Message}
	}
	a.log.Info("offline sale voided", "payment", p.ID, "sequence", p.Sequence, "amount", p.amount().String())
	a.metrics.sale("voided", true)
	a.publishPayment(p)
	return p, nil
}
