package offline

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/posagent/posagent"
)

// The shift report. An X report (CurrentShift) is the totals of the records captured since
// the last close; a Z report (CloseShift) closes the shift: it is numbered, its period ends
// where the next one starts, and it is stored with its totals in the journal (table shifts)
// so that it survives the purge of the records it counts.
//
// A shift is a range of the journal's sequence: Z n holds the records appended after Z n-1
// up to the close, so every record is in exactly one Z report, even one whose capture time
// was taken just before a close that committed first (its sale was waiting for the write
// lock). Its period [From, To) is the time between the closes, which the acquirer's totals
// are asked for; the records are those captured in it but for such stragglers. A record
// belongs to the shift in which it was journaled, whatever happens to it later: a sale stored offline in shift 4 and declined after upload in shift 5 is counted
// in shift 4, as pending offline in Z 4 (closed before the answer came) and as declined
// after upload in an X report of shift 4's period taken later. A Z report is a snapshot:
// it is not rewritten.

// Count is a number of records and their sum in minor units.
type Count struct {
	Count  int   `json:"count"`
	Amount int64 `json:"amount"`
}

func (c *Count) add(n int, amount int64) { c.Count += n; c.Amount += amount }

// Split is the sales of one method, scheme or channel: approved, and accepted offline but
// not yet confirmed by the acquirer (stored or uploading: pending offline).
type Split struct {
	Approved       Count `json:"approved"`
	PendingOffline Count `json:"pending_offline"`
}

// CurrencyTotals are the totals of one currency. Sales and refunds are counted apart.
type CurrencyTotals struct {
	Currency string `json:"currency"`
	// Sales counts the sales by state (every state present, absent ones omitted).
	Sales map[posagent.State]Count `json:"sales"`
	// Approved are the approved sales; PendingOffline the sales accepted offline that the
	// acquirer has not confirmed yet (stored, uploading): goods went out, money not yet in.
	Approved       Count `json:"approved"`
	PendingOffline Count `json:"pending_offline"`
	// ByMethod and ByScheme split the approved and pending offline sales; Online are the
	// approved sales authorized online, Offline the ones accepted offline (approved after
	// upload, or pending).
	ByMethod map[posagent.Method]Split `json:"by_method"`
	ByScheme map[posagent.Scheme]Split `json:"by_scheme"`
	Online   Count                     `json:"online"`
	Offline  Split                     `json:"offline"`
	// DeclinedAfterUpload are offline sales the acquirer declined once it got them: the
	// goods went out and the money was not collected.
	DeclinedAfterUpload Count `json:"declined_after_upload"`
	// Refunds counts the refunds by state; RefundsApproved and RefundsPending (being
	// authorized, stored or uploading) are the ones that move or may move money.
	Refunds         map[posagent.State]Count `json:"refunds"`
	RefundsApproved Count                    `json:"refunds_approved"`
	RefundsPending  Count                    `json:"refunds_pending"`
	// Net is approved sales less approved refunds, in minor units.
	Net int64 `json:"net"`
}

// Notice is a record of the period that the report points out: a sale or refund not yet
// final or not yet confirmed by the acquirer, or an offline sale declined after upload.
type Notice struct {
	Sequence   uint64         `json:"sequence"`
	ID         string         `json:"id"`
	Kind       posagent.Kind  `json:"kind"`
	Parent     string         `json:"parent,omitempty"`
	State      posagent.State `json:"state"`
	Offline    bool           `json:"offline"`
	Amount     int64          `json:"amount"`
	Currency   string         `json:"currency"`
	Reference  string         `json:"reference,omitempty"`
	CapturedAt time.Time      `json:"captured_at"`
	LastError  string         `json:"last_error,omitempty"`
}

// DeclinedAfterUpload reports whether the notice is an offline sale that the acquirer
// declined after upload.
func (n Notice) DeclinedAfterUpload() bool {
	return n.Kind == posagent.KindSale && n.Offline && n.State == posagent.StateDeclined
}

// maxNotices bounds the records a report points out one by one; NoticesMore counts the rest.
const maxNotices = 200

// ShiftTotals are the totals of the records captured in [From, To), per currency (sorted
// by code), and the records that need attention.
type ShiftTotals struct {
	From       time.Time        `json:"from"`
	To         time.Time        `json:"to"`
	Records    int              `json:"records"`
	Currencies []CurrencyTotals `json:"currencies"`
	// Notices are the records of the period that are not settled: authorizing, stored,
	// uploading, and offline sales declined after upload, in sequence order (at most 200;
	// NoticesMore says how many more there are).
	Notices     []Notice `json:"notices"`
	NoticesMore int      `json:"notices_more,omitempty"`
}

// Currency returns the totals of one currency (zero totals when there is none).
func (t *ShiftTotals) Currency(code string) CurrencyTotals {
	for _, c := range t.Currencies {
		if c.Currency == code {
			return c
		}
	}
	return CurrencyTotals{Currency: code}
}

// Totals returns the totals of the records captured in [from, to). Two queries: one
// GROUP BY, a scan of the table (0.1–0.2 s for 100,000 records on a 2-core machine, see
// BenchmarkJournal_Totals; a covering index in GROUP BY order would make it 20 ms but costs
// a page per append and every state change, on a journal that is written far more often
// than it is reported), and, when the period has unsettled records, one for them through
// the index on state (they are few).
func (j *Journal) Totals(ctx context.Context, from, to time.Time) (ShiftTotals, error) {
	from, to = from.UTC().Truncate(time.Millisecond), to.UTC().Truncate(time.Millisecond)
	// +captured_at: no index on it; the notices are found through the index on state.
	t, err := totals(ctx, j.r, from, to, span{"+captured_at >= ? AND +captured_at < ?", []any{from.UnixMilli(), to.UnixMilli()}})
	return t, classify("shift totals", err)
}

// span is the records a report counts: a SQL condition on sales and its arguments.
type span struct {
	where string
	args  []any
}

// shiftSpan is the records of a shift: the sequences after the last close up to head (a
// range of the rowid: a shift's totals read only its own records).
func shiftSpan(after, head uint64) span {
	return span{"seq > ? AND seq <= ?", []any{after, head}}
}

func totals(ctx context.Context, q querier, from, to time.Time, sp span) (ShiftTotals, error) {
	t := ShiftTotals{From: from, To: to, Currencies: []CurrencyTotals{}, Notices: []Notice{}}
	rows, err := q.QueryContext(ctx, `SELECT currency, kind, state, offline, method, scheme, COUNT(*), SUM(amount) FROM sales
		WHERE `+sp.where+` GROUP BY currency, kind, state, offline, method, scheme`, sp.args...)
	if err != nil {
		return t, err
	}
	defer rows.Close()
	byCur := map[string]*CurrencyTotals{}
	unsettled := 0
	for rows.Next() {
		var cur, kind, state, method, scheme string
		var off bool
		var n int
		var sum int64
		if err := rows.Scan(&cur, &kind, &state, &off, &method, &scheme, &n, &sum); err != nil {
			return t, err
		}
		c := byCur[cur]
		if c == nil {
			c = &CurrencyTotals{Currency: cur, Sales: map[posagent.State]Count{}, ByMethod: map[posagent.Method]Split{},
				ByScheme: map[posagent.Scheme]Split{}, Refunds: map[posagent.State]Count{}}
			byCur[cur] = c
		}
		t.Records += n
		if !posagent.State(state).Final() || (posagent.Kind(kind) == posagent.KindSale && off && state == string(posagent.StateDeclined)) {
			unsettled += n
		}
		c.add(posagent.Kind(kind), posagent.State(state), off, posagent.Method(method), posagent.Scheme(scheme), n, sum)
	}
	if err := rows.Err(); err != nil {
		return t, err
	}
	for _, c := range byCur {
		c.Net = c.Approved.Amount - c.RefundsApproved.Amount
		t.Currencies = append(t.Currencies, *c)
	}
	sort.Slice(t.Currencies, func(a, b int) bool { return t.Currencies[a].Currency < t.Currencies[b].Currency })
	if unsettled == 0 {
		return t, nil
	}
	if t.Notices, err = notices(ctx, q, sp); err != nil {
		return t, err
	}
	t.NoticesMore = unsettled - len(t.Notices)
	return t, nil
}

// add counts one group of records.
func (c *CurrencyTotals) add(kind posagent.Kind, state posagent.State, off bool, m posagent.Method, s posagent.Scheme, n int, sum int64) {
	if kind == posagent.KindRefund {
		r := c.Refunds[state]
		r.add(n, sum)
		c.Refunds[state] = r
		switch {
		case state == posagent.StateApproved:
			c.RefundsApproved.add(n, sum)
		case !state.Final():
			c.RefundsPending.add(n, sum)
		}
		return
	}
	st := c.Sales[state]
	st.add(n, sum)
	c.Sales[state] = st
	bm, bs := c.ByMethod[m], c.ByScheme[s]
	switch {
	case state == posagent.StateApproved:
		c.Approved.add(n, sum)
		bm.Approved.add(n, sum)
		bs.Approved.add(n, sum)
		if off {
			c.Offline.Approved.add(n, sum)
		} else {
			c.Online.add(n, sum)
		}
	case state.Outstanding():
		c.PendingOffline.add(n, sum)
		bm.PendingOffline.add(n, sum)
		bs.PendingOffline.add(n, sum)
		c.Offline.PendingOffline.add(n, sum)
	default:
		if off && state == posagent.StateDeclined {
			c.DeclinedAfterUpload.add(n, sum)
		}
		return
	}
	c.ByMethod[m], c.ByScheme[s] = bm, bs
}

// notices returns the first maxNotices records of [from, to) that are not settled (see
// ShiftTotals.Notices).
func notices(ctx context.Context, q querier, sp span) ([]Notice, error) {
	rows, err := q.QueryContext(ctx, `SELECT seq, id, kind, parent, state, offline, amount, currency, reference, captured_at, last_error
		FROM sales WHERE `+sp.where+` AND state IN ('authorizing', 'stored', 'uploading', 'declined')
		AND (state != 'declined' OR (offline = 1 AND kind = 'sale')) ORDER BY seq LIMIT ?`, append(sp.args, maxNotices)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Notice{}
	for rows.Next() {
		var n Notice
		var kind, state string
		var captured int64
		if err := rows.Scan(&n.Sequence, &n.ID, &kind, &n.Parent, &state, &n.Offline, &n.Amount, &n.Currency, &n.Reference,
			&captured, &n.LastError); err != nil {
			return nil, err
		}
		n.Kind, n.State, n.CapturedAt = posagent.Kind(kind), posagent.State(state), time.UnixMilli(captured).UTC()
		out = append(out, n)
	}
	return out, rows.Err()
}

// Shift is a shift report: a closed shift (a Z report, Number from 1, ClosedAt set) or the
// current one (an X report: Number is the number it will get, ClosedAt is zero).
type Shift struct {
	Number int64     `json:"number"`
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	// The shift's records are the sequences after AfterSequence up to LastSequence.
	AfterSequence  uint64      `json:"after_sequence"`
	LastSequence   uint64      `json:"last_sequence"`
	ClosedAt       time.Time   `json:"closed_at,omitzero"`
	IdempotencyKey string      `json:"idempotency_key,omitempty"`
	Totals         ShiftTotals `json:"totals"`
}

// Closed reports whether the shift is a Z report.
func (s *Shift) Closed() bool { return !s.ClosedAt.IsZero() }

// errShiftKey: an idempotency key given to CloseShift is longer than 128 bytes or not text.
var errShiftKey = posagent.Invalidf("idempotency key must be 1-128 bytes of text")

// CurrentShift returns the X report: the totals of the records journaled since the last
// close (all of them when no shift was closed yet), for the period from the last close (or
// the first record's capture) up to now.
func (j *Journal) CurrentShift(ctx context.Context, now time.Time) (Shift, error) {
	s, err := current(ctx, j.r, now)
	return s, classify("current shift", err)
}

// current is the shift that a close at now would make.
func current(ctx context.Context, q querier, now time.Time) (Shift, error) {
	now = now.UTC().Truncate(time.Millisecond)
	var last, lastTo sql.NullInt64
	var after, head uint64
	if err := q.QueryRowContext(ctx, `SELECT number, to_ms, last_seq FROM shifts ORDER BY number DESC LIMIT 1`).Scan(&last, &lastTo, &after); err != nil &&
		!errors.Is(err, sql.ErrNoRows) {
		return Shift{}, err
	}
	if err := q.QueryRowContext(ctx, `SELECT value FROM counter WHERE name = 'sequence'`).Scan(&head); err != nil {
		return Shift{}, err
	}
	from := now
	if lastTo.Valid {
		from = time.UnixMilli(lastTo.Int64).UTC()
	} else {
		var first sql.NullInt64
		if err := q.QueryRowContext(ctx, `SELECT MIN(captured_at) FROM sales WHERE seq <= ?`, head).Scan(&first); err != nil {
			return Shift{}, err
		}
		if first.Valid && first.Int64 < from.UnixMilli() {
			from = time.UnixMilli(first.Int64).UTC()
		}
	}
	// A clock set back below the last close: the shift is empty rather than overlapping.
	to := now
	if to.Before(from) {
		to = from
	}
	// A journal rebased onto the acquirer's chain may start above the last close.
	head = max(head, after)
	t, err := totals(ctx, q, from, to, shiftSpan(after, head))
	if err != nil {
		return Shift{}, err
	}
	return Shift{Number: last.Int64 + 1, From: from, To: to, AfterSequence: after, LastSequence: head, Totals: t}, nil
}

// CloseShift makes a Z report: the current shift up to now, numbered, stored with its
// totals, in one transaction (no record can be appended between the totals and the
// close, so the next shift starts exactly where this one ends). With an idempotency key
// (optional: ""), closing again with the same key returns the same Z report and
// closed=false instead of closing another shift.
func (j *Journal) CloseShift(ctx context.Context, now time.Time, key string) (s Shift, closed bool, err error) {
	if key != "" && (checkText("idempotency key", key, 1, 128) != nil) {
		return Shift{}, false, errShiftKey
	}
	tx, err := j.w.BeginTx(ctx, nil) // BEGIN IMMEDIATE
	if err != nil {
		return Shift{}, false, classify("close shift", err)
	}
	defer tx.Rollback()
	if key != "" {
		s, err := scanShift(tx.QueryRowContext(ctx, selectShift+` WHERE idempotency_key = ?`, key))
		if err == nil {
			return s, false, nil
		} else if !errors.Is(err, sql.ErrNoRows) {
			return Shift{}, false, classify("close shift", err)
		}
	}
	s, err = current(ctx, tx, now)
	if err != nil {
		return Shift{}, false, classify("close shift", err)
	}
	s.ClosedAt, s.IdempotencyKey = now.UTC().Truncate(time.Millisecond), key
	data, err := json.Marshal(s.Totals)
	if err != nil {
		return Shift{}, false, fmt.Errorf("close shift: %w", err)
	}
	var nkey any
	if key != "" {
		nkey = key
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO shifts (number, idempotency_key, from_ms, to_ms, after_seq, last_seq, closed_at, totals)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, s.Number, nkey, s.From.UnixMilli(), s.To.UnixMilli(), s.AfterSequence, s.LastSequence,
		s.ClosedAt.UnixMilli(), string(data)); err != nil {
		return Shift{}, false, classify("close shift", err)
	}
	if err := tx.Commit(); err != nil {
		return Shift{}, false, classify("close shift", err)
	}
	return s, true, nil
}

const selectShift = `SELECT number, COALESCE(idempotency_key, ''), from_ms, to_ms, after_seq, last_seq, closed_at, totals FROM shifts`

func scanShift(r scanner) (Shift, error) {
	var s Shift
	var from, to, closed int64
	var data string
	if err := r.Scan(&s.Number, &s.IdempotencyKey, &from, &to, &s.AfterSequence, &s.LastSequence, &closed, &data); err != nil {
		return Shift{}, err
	}
	s.From, s.To, s.ClosedAt = time.UnixMilli(from).UTC(), time.UnixMilli(to).UTC(), time.UnixMilli(closed).UTC()
	if err := json.Unmarshal([]byte(data), &s.Totals); err != nil {
		return Shift{}, fmt.Errorf("shift %d: totals: %w", s.Number, err)
	}
	return s, nil
}

// Shift returns the Z report with number n (ErrNotFound when there is none).
func (j *Journal) Shift(ctx context.Context, n int64) (Shift, error) {
	s, err := scanShift(j.r.QueryRowContext(ctx, selectShift+` WHERE number = ?`, n))
	if errors.Is(err, sql.ErrNoRows) {
		return Shift{}, fmt.Errorf("shift %d: %w", n, ErrNotFound)
	}
	return s, classify("read shift", err)
}

// Shifts returns every Z report, oldest first.
func (j *Journal) Shifts(ctx context.Context) ([]Shift, error) {
	rows, err := j.r.QueryContext(ctx, selectShift+` ORDER BY number`)
	if err != nil {
		return nil, classify("read shifts", err)
	}
	defer rows.Close()
	out := []Shift{}
	for rows.Next() {
		s, err := scanShift(rows)
		if err != nil {
			return nil, classify("read shifts", err)
		}
		out = append(out, s)
	}
	return out, classify("read shifts", rows.Err())
}
