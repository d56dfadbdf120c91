package device

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/posagent/posagent"
	"github.com/posagent/posagent/drivers/display"
	"github.com/posagent/posagent/drivers/scanner"
	"github.com/posagent/posagent/offline"
	"github.com/posagent/posagent/qr"
	"github.com/posagent/posagent/sync/uplink"
	"github.com/posagent/posagent/sync/wire"
)

// Phase is where the counter's checkout is. One payment is open at a time (one counter,
// one customer); the phases and their moves are the table below, and every change goes
// through Agent.setPhase, which refuses a move the table does not have.
//
//	idle ──create scan──► waiting_scan ──code──► authorizing ──outcome──► finishing ──► idle
//	idle ──create qr────► waiting_customer ──paid/expired/canceled/timeout──► finishing
//	waiting_scan ──cancel/timeout──► finishing
//	idle ──restart with a sale in flight──► authorizing | waiting_customer | waiting_scan
//
// What happens to a scan in each phase: waiting_scan takes it (an unusable code is refused
// and the payment keeps waiting); every other phase ignores it with a "scan" event that
// says why ("no_sale" in idle, "busy" while a code is being authorized or a receipt
// printed, "merchant_qr" while the customer pays a shown code).
type Phase string

// The phases of the checkout.
const (
	PhaseIdle            Phase = "idle"
	PhaseWaitingScan     Phase = "waiting_scan"
	PhaseAuthorizing     Phase = "authorizing"
	PhaseWaitingCustomer Phase = "waiting_customer"
	PhaseFinishing       Phase = "finishing"
)

var phaseMoves = map[Phase][]Phase{
	PhaseIdle:            {PhaseWaitingScan, PhaseWaitingCustomer, PhaseAuthorizing},
	PhaseWaitingScan:     {PhaseAuthorizing, PhaseFinishing},
	PhaseAuthorizing:     {PhaseFinishing},
	PhaseWaitingCustomer: {PhaseFinishing},
	PhaseFinishing:       {PhaseIdle},
}

// session is the open payment and what its goroutine listens to.
type session struct {
	p      *Payment
	scans  chan scanner.Scan
	cancel chan struct{}
	done   chan struct{}
}

// setPhase moves the checkout; the caller holds a.mu.
func (a *Agent) setPhase(to Phase) {
	for _, ok := range phaseMoves[a.phase] {
		if ok == to {
			a.log.Debug("checkout phase", "from", a.phase, "to", to)
			a.phase = to
			return
		}
	}
	panic(fmt.Sprintf("checkout: illegal phase change %s → %s", a.phase, to))
}

// PaymentRequest is POST /v1/payments.
type PaymentRequest struct {
	Amount         int64  `json:"amount"`
	Currency       string `json:"currency"`
	Reference      string `json:"reference"`
	IdempotencyKey string `json:"idempotency_key"`
	Mode           Mode   `json:"mode"`
}

// apiError is an error the local API reports with a status and a code.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string { return e.Message }

func (r *PaymentRequest) validate(defaultCurrency string) (posagent.Currency, error) {
	invalid := func(format string, args ...any) error {
		return &apiError{422, "invalid", fmt.Sprintf(format, args...)}
	}
	if r.Currency == "" {
		r.Currency = defaultCurrency
	}
	if r.Mode == "" {
		r.Mode = ModeScan
	}
	cur, err := posagent.LookupCurrency(r.Currency)
	if err != nil || cur.Code != r.Currency {
		return cur, invalid("currency %q is not an upper-case ISO 4217 alphabetic code like CNY", r.Currency)
	}
	if r.Amount <= 0 || r.Amount > 1e12 {
		return cur, invalid("amount %d must be a positive number of minor units (at most 10^12)", r.Amount)
	}
	if r.Mode != ModeScan && r.Mode != ModeQR {
		return cur, invalid("mode %q must be scan or qr", r.Mode)
	}
	if r.IdempotencyKey == "" || len(r.IdempotencyKey) > 128 || !printable(r.IdempotencyKey) {
		return cur, invalid("idempotency_key must be 1-128 printable characters (a retry with the same key is a look-up, never a second payment)")
	}
	if len(r.Reference) > 128 || !printable(r.Reference) {
		return cur, invalid("reference must be at most 128 printable characters")
	}
	if r.Mode == ModeQR && (len(r.Reference) > 25 || !ascii(r.Reference)) {
		return cur, invalid("reference %q: in qr mode it is the order reference in the code (EMV tag 62/05): at most 25 ASCII characters", r.Reference)
	}
	return cur, nil
}

func printable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

func ascii(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
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
		return nil, false, err
	}
	a.mu.Lock()
	if s := a.cur; s != nil && a.phase == PhaseFinishing {
		// The last payment has its outcome and is being wrapped up (display, store): a POS
		// app that opens the next one on the outcome's event waits a moment, not a 409.
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
	} else {
		p.ExpiresAt = now.Add(a.cfg.Checkout.ScanTimeout.D()).UTC()
	}
	if err := a.store.create(ctx, p); err != nil {
		if errors.Is(err, errExists) {
			return a.CreatePayment(ctx, req)
		}
		return nil, false, &apiError{503, "store", "cannot store the payment: " + err.Error()}
	}
	if req.Mode == ModeQR {
		// A merchant-presented sale is journaled now: the code is the sale.
		rec, _, err := a.journal.Append(ctx, offline.NewSale{
			IdempotencyKey: p.IdempotencyKey, Reference: p.OrderReference, Amount: p.amount(), Method: posagent.MethodMerchantQR,
		})
		if err != nil {
			a.fail(ctx, p, journalError(err))
			return p, false, nil
		}
		p.SaleID, p.Sequence = rec.ID, rec.Sequence
		a.store.save(ctx, p)
	}
	a.open(p, nil)
	return a.snapshot(p), false, nil
}

// open makes p the current payment and starts its goroutine; resume, when set, is what a
// restart found in the journal for it.
func (a *Agent) open(p *Payment, resume *offline.Record) {
	s := &session{p: p, scans: make(chan scanner.Scan, 1), cancel: make(chan struct{}), done: make(chan struct{})}
	a.mu.Lock()
	a.cur = s
	switch {
	case resume != nil && p.Mode == ModeScan:
		a.setPhase(PhaseAuthorizing)
	case p.Mode == ModeQR:
		a.setPhase(PhaseWaitingCustomer)
	default:
		a.setPhase(PhaseWaitingScan)
	}
	a.mu.Unlock()
	a.publishPayment(p)
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		defer close(s.done)
		switch {
		case resume != nil && p.Mode == ModeScan:
			a.resumeAuthorization(s, *resume)
		case p.Mode == ModeQR:
			a.runQR(s)
		default:
			a.runScan(s)
		}
	}()
}

// runScan waits for the customer's code.
func (a *Agent) runScan(s *session) {
	p := s.p
	a.show(display.ScanScreen(p.amount()))
	timer := time.NewTimer(time.Until(p.ExpiresAt))
	defer timer.Stop()
	for {
		select {
		case <-a.stopCh:
			return // the payment stays open; a restart shows it again
		case <-s.cancel:
			a.finish(s, PaymentCanceled, &ErrorInfo{"canceled", "canceled by the POS app"})
			return
		case <-timer.C:
			a.finish(s, PaymentFailed, &ErrorInfo{"timeout", "no payment code was scanned in time"})
			return
		case sc := <-s.scans:
			cls := sc.Classification
			var method posagent.Method
			switch cls.Kind {
			case qr.KindWalletCode:
				method = posagent.MethodWalletCode
			case qr.KindCPM:
				method = posagent.MethodEMVCPM
			default:
				why := refusalFor(cls)
				a.events.publish("scan", map[string]any{"result": "refused", "payment_id": p.ID, "kind": cls.Kind, "reason": why})
				a.log.Info("scan refused", "payment", p.ID, "kind", cls.Kind, "reason", why)
				a.show(display.Screen{display.Fit("CODE NOT ACCEPTED"), display.Fit("SHOW PAYMENT CODE")})
				continue
			}
			a.mu.Lock()
			a.setPhase(PhaseAuthorizing)
			a.mu.Unlock()
			a.authorize(s, cls, method, sc.At)
			return
		}
	}
}

func refusalFor(cls qr.Classification) string {
	switch cls.Kind {
	case qr.KindMPM, qr.KindMerchantURL:
		return "this is a merchant's code, not a payment code: the customer must open the wallet's pay code"
	}
	if cls.Reason != "" {
		return "not a payment code: " + cls.Reason
	}
	return "not a payment code"
}

// authorize journals the sale and decides it: online when the acquirer is reachable,
// else (or when it does not answer in time) offline under the risk policy.
func (a *Agent) authorize(s *session, cls qr.Classification, method posagent.Method, scannedAt time.Time) {
	p := s.p
	ctx := context.Background()
	name := cls.Name
	if name == "" && cls.Kind == qr.KindCPM {
		name = "EMV QR " + cls.Scheme
	}
	a.update(func() { p.Method, p.Scheme, p.SchemeName, p.Credential = string(method), cls.Scheme, name, cls.Masked })
	sale := offline.NewSale{
		IdempotencyKey: p.IdempotencyKey, Reference: p.Reference, Amount: p.amount(), Method: method,
		Scheme: posagent.Scheme(cls.Scheme), Credential: cls.Code,
	}
	if !a.online.Load() {
		a.storeOffline(s, cls, sale)
		return
	}
	rec, _, err := a.journal.Append(ctx, sale)
	if err != nil {
		a.finish(s, PaymentFailed, journalError(err))
		return
	}
	a.update(func() { p.SaleID, p.Sequence, p.State = rec.ID, rec.Sequence, PaymentAuthorizing })
	a.publishPayment(p)
	a.decide(s, rec, cls, cls.Code)
}

// storeOffline takes the sale offline at once (the acquirer is known to be unreachable).
func (a *Agent) storeOffline(s *session, cls qr.Classification, sale offline.NewSale) {
	if cls.OnlineOnly {
		a.finish(s, PaymentFailed, &ErrorInfo{offline.RefuseMethod, fmt.Sprintf("%s codes need the acquirer, which is unreachable: ask for another way to pay", nameOf(cls))})
		return
	}
	sale.Offline = true
	rec, _, err := a.journal.Append(context.Background(), sale)
	if err != nil {
		a.finish(s, PaymentFailed, journalError(err))
		return
	}
	a.update(func() { s.p.SaleID, s.p.Sequence, s.p.Offline = rec.ID, rec.Sequence, true })
	a.finish(s, paymentState(rec.State), nil)
}

func nameOf(cls qr.Classification) string {
	if cls.Name != "" {
		return cls.Name
	}
	if cls.Scheme != "" {
		return cls.Scheme
	}
	return string(cls.Kind)
}

// decide asks the acquirer about a journaled sale and records its answer.
func (a *Agent) decide(s *session, rec offline.Record, cls qr.Classification, credential string) {
	p := s.p
	ctx, cancel := context.WithTimeout(a.hardCtx, a.cfg.Acquirer.AuthTimeout.D())
	defer cancel()
	start := time.Now()
	resp, err := a.authClient.Authorize(ctx, wire.AuthorizationRequest{
		ID: rec.ID, Sequence: rec.Sequence, IdempotencyKey: rec.IdempotencyKey, Reference: rec.Reference, CapturedAt: rec.CapturedAt,
		Amount: rec.Amount.Minor, Currency: rec.Amount.Currency.Code, Method: string(rec.Method), Scheme: string(rec.Scheme), Credential: credential,
	})
	a.metrics.observeAcquirer(time.Since(start))
	jctx := context.Background()
	switch {
	case err == nil && resp.Decision == wire.Approved:
		a.setOnline(true, nil)
		if _, err := a.journal.Transition(jctx, rec.ID, posagent.StateApproved, "auth code "+resp.AuthCode); err != nil {
			a.finish(s, PaymentFailed, journalError(err))
			return
		}
		a.update(func() { p.AuthCode = resp.AuthCode })
		a.finish(s, PaymentApproved, nil)
	case err == nil:
		a.setOnline(true, nil)
		reason := resp.Reason
		if reason == "" {
			reason = "declined by the acquirer"
		}
		if _, err := a.journal.Transition(jctx, rec.ID, posagent.StateDeclined, reason); err != nil {
			a.finish(s, PaymentFailed, journalError(err))
			return
		}
		a.finish(s, PaymentDeclined, &ErrorInfo{"declined", reason})
	case a.hardCtx.Err() != nil:
		// Stopped in the middle: the sale stays authorizing in the journal and the payment
		// open in the store; the next start asks again with the same idempotency key.
		a.log.Warn("shutdown during authorization; resumed at next start", "payment", p.ID, "sequence", rec.Sequence)
	case uplink.Temporary(err) || errors.Is(err, context.DeadlineExceeded):
		a.setOnline(false, err)
		if cls.OnlineOnly {
			msg := fmt.Sprintf("the acquirer did not answer and %s codes need it: ask for another way to pay", nameOf(cls))
			a.journal.Transition(jctx, rec.ID, posagent.StateFailed, msg)
			a.finish(s, PaymentFailed, &ErrorInfo{"acquirer_unreachable", msg})
			return
		}
		if _, err := a.journal.Transition(jctx, rec.ID, posagent.StateStored, "acquirer unreachable: "+err.Error()); err != nil {
			var ref *offline.Refusal
			if errors.As(err, &ref) {
				a.journal.Transition(jctx, rec.ID, posagent.StateFailed, ref.Msg)
				a.finish(s, PaymentFailed, &ErrorInfo{ref.Code, ref.Msg})
				return
			}
			a.finish(s, PaymentFailed, journalError(err))
			return
		}
		a.update(func() { p.Offline = true })
		a.finish(s, PaymentStored, nil)
	default:
		msg := "the acquirer refused the request: " + err.Error()
		a.journal.Transition(jctx, rec.ID, posagent.StateFailed, msg)
		a.finish(s, PaymentFailed, &ErrorInfo{"acquirer_error", msg})
	}
}

// resumeAuthorization asks again about a sale a restart found authorizing.
func (a *Agent) resumeAuthorization(s *session, rec offline.Record) {
	cred, err := a.journal.Credential(context.Background(), rec.ID)
	if err != nil {
		a.finish(s, PaymentFailed, journalError(err))
		return
	}
	cls := qr.Classify(cred)
	a.log.Info("resuming authorization after restart", "payment", s.p.ID, "sequence", rec.Sequence)
	a.decide(s, rec, cls, cred)
}

// runQR follows a merchant-presented order until it is paid, expires or is canceled.
func (a *Agent) runQR(s *session) {
	p := s.p
	a.show(display.Screen{display.Fit("SCAN QR TO PAY"), display.Row("TOTAL", display.FormatAmount(p.amount()))})
	if a.cfg.Checkout.QRSlip && a.dev.printer != nil && p.UpdatedAt.Equal(p.CreatedAt) {
		go a.printSlip(p)
	}
	timer := time.NewTimer(time.Until(p.ExpiresAt))
	defer timer.Stop()
	tick := time.NewTicker(a.cfg.Checkout.OrderPoll.D())
	defer tick.Stop()
	ctx := context.Background()
	for {
		select {
		case <-a.stopCh:
			return
		case <-s.cancel:
			a.journal.Transition(ctx, p.SaleID, posagent.StateCanceled, "canceled by the POS app")
			a.finish(s, PaymentCanceled, &ErrorInfo{"canceled", "canceled by the POS app"})
			return
		case <-timer.C:
			a.journal.Transition(ctx, p.SaleID, posagent.StateFailed, "not paid in time")
			a.finish(s, PaymentFailed, &ErrorInfo{"timeout", "the customer did not pay in time"})
			return
		case <-tick.C:
			octx, cancel := context.WithTimeout(a.hardCtx, a.cfg.Acquirer.RequestTimeout.D())
			o, err := a.client.Order(octx, p.OrderReference)
			cancel()
			if err != nil {
				a.setOnline(false, err)
				continue
			}
			a.setOnline(true, nil)
			switch o.State {
			case "paid":
				if _, err := a.journal.Transition(ctx, p.SaleID, posagent.StateApproved, "order paid"); err != nil {
					a.finish(s, PaymentFailed, journalError(err))
					return
				}
				if o.Scheme != "" {
					a.update(func() { p.Scheme = o.Scheme })
				}
				a.finish(s, PaymentApproved, nil)
				return
			case "expired":
				a.journal.Transition(ctx, p.SaleID, posagent.StateFailed, "order expired")
				a.finish(s, PaymentFailed, &ErrorInfo{"expired", "the order expired at the acquirer"})
				return
			case "canceled":
				a.journal.Transition(ctx, p.SaleID, posagent.StateCanceled, "order canceled at the acquirer")
				a.finish(s, PaymentCanceled, &ErrorInfo{"canceled", "the order was canceled at the acquirer"})
				return
			}
		}
	}
}

// finish ends the open payment: the display and the event stream first (what the
// customer and the cashier wait for), then the store, then the receipts.
func (a *Agent) finish(s *session, state PaymentState, e *ErrorInfo) {
	p := s.p
	a.mu.Lock()
	a.setPhase(PhaseFinishing)
	now := a.now().UTC()
	p.State, p.Error, p.UpdatedAt, p.CompletedAt = state, e, now, &now
	a.mu.Unlock()
	a.metrics.sale(string(state), p.Offline)
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
	shown := make(chan struct{})
	go func() { a.show(screen); close(shown) }()
	a.publishPayment(p)
	a.log.Info("payment "+string(state), "payment", p.ID, "amount", p.amount().String(), "currency", p.Currency,
		"method", p.Method, "scheme", p.Scheme, "offline", p.Offline, "sequence", p.Sequence, "code", errCode(e))
	ctx := context.Background()
	if err := a.store.save(ctx, p); err != nil {
		a.log.Error("save payment", "payment", p.ID, "err", err)
	}
	<-shown // before the next payment can put its own screen up
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

func errCode(e *ErrorInfo) string {
	if e == nil {
		return ""
	}
	return e.Code
}

// fail ends a payment that never became the open one.
func (a *Agent) fail(ctx context.Context, p *Payment, e *ErrorInfo) {
	now := a.now().UTC()
	p.State, p.Error, p.UpdatedAt, p.CompletedAt = PaymentFailed, e, now, &now
	a.store.save(ctx, p)
	a.publishPayment(p)
	a.metrics.sale(string(PaymentFailed), false)
}

// journalError turns a journal failure into what the cashier reads.
func journalError(err error) *ErrorInfo {
	var ref *offline.Refusal
	switch {
	case errors.As(err, &ref):
		return &ErrorInfo{ref.Code, ref.Msg}
	case errors.Is(err, offline.ErrDiskFull):
		return &ErrorInfo{"journal_full", "the terminal's storage is full: no sale can be recorded; call support"}
	case errors.Is(err, offline.ErrHeld):
		return &ErrorInfo{"journal_held", "offline sales are suspended until a technician checks the journal"}
	case errors.Is(err, offline.ErrConflict):
		return &ErrorInfo{"idempotency_conflict", "the idempotency key was used for another sale"}
	}
	return &ErrorInfo{"journal", "the sale could not be recorded: " + err.Error()}
}

// Scan hands a code read by the scanner to the open payment, or reports why nothing
// takes it.
func (a *Agent) Scan(sc scanner.Scan) {
	a.metrics.scanned()
	a.mu.Lock()
	s, phase := a.cur, a.phase
	taken := false
	if s != nil && phase == PhaseWaitingScan {
		select {
		case s.scans <- sc:
			taken = true
		default:
		}
	}
	a.mu.Unlock()
	if taken {
		return
	}
	reason := "no_sale"
	msg := "a code was scanned with no sale open"
	switch {
	case phase == PhaseWaitingCustomer:
		reason, msg = "merchant_qr", "the open payment waits for the customer to scan the shown code"
	case s != nil:
		reason, msg = "busy", "a code is already being authorized"
	}
	a.log.Info("scan ignored", "reason", reason, "kind", sc.Classification.Kind)
	a.events.publish("scan", map[string]any{"result": "ignored", "reason": reason, "message": msg, "kind": sc.Classification.Kind})
}

// CancelPayment cancels the open payment while it waits for the customer. A payment being
// authorized cannot be canceled (money may be moving): that is a conflict, as is one
// already over.
func (a *Agent) CancelPayment(ctx context.Context, id string) (*Payment, error) {
	a.mu.Lock()
	s, phase := a.cur, a.phase
	if s == nil || s.p.ID != id {
		a.mu.Unlock()
		p, err := a.payment(ctx, id, "")
		if err != nil {
			return nil, err
		}
		if p.State == PaymentCanceled {
			return p, nil // canceling twice is harmless
		}
		return nil, &apiError{409, "not_cancelable", "payment " + id + " is " + string(p.State) + ": only a waiting payment can be canceled"}
	}
	if phase != PhaseWaitingScan && phase != PhaseWaitingCustomer {
		a.mu.Unlock()
		return nil, &apiError{409, "not_cancelable", "payment " + id + " is being authorized: wait for its outcome"}
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

// payment finds a payment by id or idempotency key: the open one from memory, the others
// from the store, with an offline sale's later state from the journal.
func (a *Agent) payment(ctx context.Context, id, key string) (*Payment, error) {
	a.mu.Lock()
	if s := a.cur; s != nil && ((id != "" && s.p.ID == id) || (key != "" && s.p.IdempotencyKey == key)) {
		p := *s.p
		a.mu.Unlock()
		return &p, nil
	}
	a.mu.Unlock()
	var p *Payment
	var err error
	if id != "" {
		p, err = a.store.byID(ctx, id)
	} else {
		p, err = a.store.byKey(ctx, key)
	}
	if err != nil {
		return nil, err
	}
	if p.Offline && p.SaleID != "" && (p.State == PaymentStored || p.State == PaymentUploading) {
		if rec, err := a.journal.Get(ctx, p.SaleID); err == nil {
			p.State = paymentState(rec.State)
			if rec.State == posagent.StateDeclined || rec.State == posagent.StateFailed {
				p.Error = &ErrorInfo{"declined_after_upload", rec.LastError}
			}
		}
	}
	return p, nil
}

func (a *Agent) snapshot(p *Payment) *Payment {
	a.mu.Lock()
	defer a.mu.Unlock()
	c := *p
	return &c
}

func (a *Agent) publishPayment(p *Payment) {
	a.events.publish("payment", a.snapshot(p))
}

// show puts a screen on the customer display (if there is one) and remembers it, so a
// display plugged in again shows the right thing.
func (a *Agent) show(s display.Screen) {
	a.dev.show(s)
}

// resume reopens what a restart found: payments the store has as not done, checked
// against the journal (the ledger decides).
func (a *Agent) resume(ctx context.Context) error {
	open, err := a.store.open(ctx)
	if err != nil {
		return fmt.Errorf("read open payments: %w", err)
	}
	for i, p := range open {
		var rec *offline.Record
		if r, err := a.journal.ByIdempotencyKey(ctx, p.IdempotencyKey); err == nil {
			rec = &r
			p.SaleID, p.Sequence, p.Offline = r.ID, r.Sequence, r.Offline
			p.Method, p.Scheme, p.Credential = string(r.Method), string(r.Scheme), r.CredentialMasked
		} else if !errors.Is(err, offline.ErrNotFound) {
			return fmt.Errorf("resume payment %s: %w", p.ID, err)
		}
		last := i == len(open)-1
		switch {
		case rec != nil && rec.State != posagent.StateAuthorizing:
			// The outcome was journaled before the stop: the payment just catches up.
			now := a.now().UTC()
			p.State, p.UpdatedAt, p.CompletedAt = paymentState(rec.State), now, &now
			if rec.LastError != "" && !p.State.Accepted() {
				p.Error = &ErrorInfo{string(rec.State), rec.LastError}
			}
			a.store.save(ctx, p)
			a.publishPayment(p)
		case !last:
			a.fail(ctx, p, &ErrorInfo{"superseded", "the agent restarted with a later payment open"})
		case rec != nil && p.Mode == ModeScan:
			p.State = PaymentAuthorizing
			a.open(p, rec)
		case p.Mode == ModeQR && rec == nil:
			a.fail(ctx, p, &ErrorInfo{"journal", "the merchant-presented sale was not journaled before the stop"})
		case !a.now().Before(p.ExpiresAt):
			a.fail(ctx, p, &ErrorInfo{"timeout", "the payment expired while the agent was stopped"})
		default:
			p.UpdatedAt = a.now().UTC() // not a fresh payment: no second QR slip
			a.log.Info("payment reopened after restart", "payment", p.ID, "mode", p.Mode)
			a.open(p, nil)
		}
	}
	return nil
}

// update changes the open payment under the lock the API reads it with.
func (a *Agent) update(f func()) {
	a.mu.Lock()
	defer a.mu.Unlock()
	f()
}
