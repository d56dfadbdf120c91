package uplink

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/posagent/posagent/internal/wait"
	"strconv"
	"time"

	"github.com/posagent/posagent"
	"github.com/posagent/posagent/offline"
	"github.com/posagent/posagent/sync/wire"
)

// DefaultBatch is the most records per upload when Syncer.BatchSize is 0: the most a
// batch may hold (wire.MaxBatch). MaxBatchBytes and the answer time size each batch below it.
const DefaultBatch = wire.MaxBatch

// Defaults of the batch sizing (see Syncer).
const (
	DefaultBatchBytes    = 512 << 10       // a batch's records, as JSON, at most
	DefaultTargetLatency = 2 * time.Second // the answer time batches adapt to
)

// cursorKey is where the results feed's cursor is kept in the journal.
const cursorKey = "results_cursor"

// Syncer moves the journal's records to the acquirer and the acquirer's decisions back.
// One Syncer per journal; its methods must not run concurrently with each other.
type Syncer struct {
	Journal *offline.Journal
	Client  *Client
	// Key is the journal's key: it decrypts credentials for the upload and computes the
	// credential tags that the acquirer checks the chain with.
	Key *offline.Key
	// BatchSize is the most records per upload (DefaultBatch; at most wire.MaxBatch).
	BatchSize int
	// MaxBatchBytes bounds the size of a batch's records as JSON (DefaultBatchBytes): a
	// batch holds as many records as fit, at least one.
	MaxBatchBytes int
	// TargetLatency is the answer time the batch size adapts to (DefaultTargetLatency): a
	// batch answered slower, or refused, halves the next one's records; one answered in
	// under a quarter of it doubles them, up to BatchSize. A slow or loaded acquirer thus
	// gets smaller batches that still finish within its and the client's timeouts.
	TargetLatency time.Duration
	// MaxRounds is how many failed uploads in a row Drain tolerates (each one after the
	// client's own retries and, when the breaker opened, its cool-down) before it gives
	// up (3 when 0).
	MaxRounds int
	// BreakerWait is how long Drain waits, after an upload the open circuit breaker
	// refused, for the breaker to let a probe through; when the wait would be longer, Drain
	// returns the error (Run tries again later). 0: never wait.
	BreakerWait time.Duration
	// OnOutcome is called for each record the results feed settles. A decline after
	// upload is money the merchant will not get: the agent must show it.
	OnOutcome func(Outcome)
	// OnProgress is called after each batch.
	OnProgress func(Progress)
}

// Outcome is a deferred authorization's result, applied to the journal.
type Outcome struct {
	Record   offline.Record // after the change
	Decision wire.Decision
	Reason   string
	AuthCode string
}

// Progress is how far a Drain is.
type Progress struct {
	Done  int // records answered (accepted, duplicate or rejected)
	Total int // records pending when the drain started (a guess: sales keep coming)
}

// Rejection is a record the acquirer refused to store. It stays unacknowledged, in state
// failed with the reason, for a technician: the acquirer holds everything else, and its
// gaps show where.
type Rejection struct {
	Sequence uint64
	ID       string
	Reason   string
}

// Report is what a sync did.
type Report struct {
	Sent      int // records sent, retries not counted twice
	Accepted  int
	Duplicate int // the acquirer already held them (an answer lost earlier)
	Rejected  []Rejection
	Approved  int // deferred authorizations approved
	Declined  []Outcome
	HighWater uint64     // every sequence up to this is stored at the acquirer
	Gaps      []wire.Gap // sequences the acquirer misses above it
	Left      int        // records still unacknowledged
	Batches   int
	Failed    int // uploads that failed (and were tried again)
	Settled   int // records the results feed settled (Approved + len(Declined))
}

// Drain uploads what the journal holds, in sequence order and batches, until nothing is
// pending, marking each record only on the acquirer's answer: accepted and duplicate are
// acknowledged; a rejection leaves the record unacknowledged, notes the reason and, for
// an offline sale in flight, moves it to failed. A failed upload is tried again (after the
// breaker's cool-down when it opened, see BreakerWait) up to MaxRounds times in a row.
func (s *Syncer) Drain(ctx context.Context) (Report, error) {
	var rep Report
	err := s.drain(ctx, &rep)
	return rep, err
}

func (s *Syncer) batchSize() int {
	switch {
	case s.BatchSize <= 0:
		return DefaultBatch
	case s.BatchSize > wire.MaxBatch:
		return wire.MaxBatch
	}
	return s.BatchSize
}

// sizer decides each batch's records: a pure decision from the last answer's time.
type sizer struct {
	limit, max int           // records in the next batch, and its ceiling
	bytes      int           // the byte bound
	target     time.Duration // the answer time adapted to
}

func (s *Syncer) newSizer() *sizer {
	z := &sizer{max: s.batchSize(), bytes: s.MaxBatchBytes, target: s.TargetLatency}
	if z.bytes <= 0 {
		z.bytes = DefaultBatchBytes
	}
	if z.target <= 0 {
		z.target = DefaultTargetLatency
	}
	z.limit = z.max
	return z
}

// answered adapts the limit to a batch's answer time (ok false: it failed).
func (z *sizer) answered(took time.Duration, ok bool) {
	switch {
	case !ok || took > z.target:
		z.limit = max(1, z.limit/2)
	case took < z.target/4:
		z.limit = min(z.max, z.limit*2)
	}
}

// cut returns how many of recs (their JSON sizes) the next batch takes: at most limit,
// within the byte bound, at least one.
func (z *sizer) cut(sizes []int) int {
	n, total := 0, 0
	for _, sz := range sizes {
		if n == z.limit || (n > 0 && total+sz > z.bytes) {
			break
		}
		n++
		total += sz
	}
	return n
}

func (s *Syncer) drain(ctx context.Context, rep *Report) (retErr error) {
	z := s.newSizer()
	size := z.max
	total := 0
	if st, err := s.Journal.Stats(ctx); err == nil {
		total = st.Unacked - st.ByState[posagent.StateAuthorizing]
	}
	rounds := s.MaxRounds
	if rounds <= 0 {
		rounds = 3
	}
	skip := map[string]bool{} // rejected in this drain: not sent again until the next
	failures := 0
	defer func() {
		if st, err := s.Journal.Stats(context.WithoutCancel(ctx)); err == nil {
			rep.Left = st.Unacked - st.ByState[posagent.StateAuthorizing]
		}
	}()
	// The records the acquirer answered accepted or duplicate are acknowledged in the
	// journal with the next batch's start (one commit per batch), or at the end.
	var acks pendingAcks
	defer func() {
		if err := acks.flush(context.WithoutCancel(ctx), s.Journal); err != nil && retErr == nil {
			retErr = err
		}
	}()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		pending, err := s.Journal.Pending(ctx, len(skip)+len(acks.ids)+size)
		if err != nil {
			return err
		}
		batch := pending[:0]
		for _, r := range pending {
			if !skip[r.ID] && !acks.has[r.ID] && len(batch) < z.limit {
				batch = append(batch, r)
			}
		}
		if len(batch) == 0 {
			return nil
		}
		recs, err := s.wireRecords(ctx, batch)
		if err != nil {
			return err
		}
		sizes := make([]int, len(recs))
		for i, r := range recs {
			sizes[i] = wireSize(r)
		}
		n := z.cut(sizes)
		batch, recs = batch[:n], recs[:n]
		t0 := time.Now()
		resp, err := s.upload(ctx, batch, recs, &acks)
		z.answered(time.Since(t0), err == nil)
		if err != nil {
			rep.Failed++
			s.Journal.NoteError(context.WithoutCancel(ctx), batch[0].ID, "upload: "+err.Error())
			failures++
			if !Temporary(err) || failures >= rounds {
				return fmt.Errorf("upload records %d–%d: %w", batch[0].Sequence, batch[len(batch)-1].Sequence, err)
			}
			var open *CircuitOpenError
			if errors.As(err, &open) {
				pause := time.Until(open.Until)
				if pause > s.BreakerWait {
					return fmt.Errorf("upload records %d–%d: %w", batch[0].Sequence, batch[len(batch)-1].Sequence, err)
				}
				if err := wait.Sleep(ctx, pause); err != nil {
					return err
				}
			}
			continue
		}
		failures = 0
		rep.Batches++
		rep.Sent += len(batch)
		if err := s.apply(ctx, batch, resp, rep, skip, &acks); err != nil {
			return err
		}
		if s.OnProgress != nil {
			s.OnProgress(Progress{Done: rep.Accepted + rep.Duplicate + len(rep.Rejected), Total: max(total, rep.Sent)})
		}
	}
}

// wireRecords are the journal's records as the batch carries them.
func (s *Syncer) wireRecords(ctx context.Context, batch []offline.Record) ([]wire.Record, error) {
	recs := make([]wire.Record, len(batch))
	for i, r := range batch {
		cred := ""
		if r.CredentialMasked != "" {
			c, err := s.Journal.Credential(ctx, r.ID)
			if err != nil {
				return nil, err
			}
			cred = c
		}
		if r.State == posagent.StateStored {
			r.State = posagent.StateUploading // what MarkUploading makes it
		}
		recs[i] = WireRecord(r, cred, s.Key)
	}
	return recs, nil
}

// wireSize estimates a record's size in a batch's JSON (within a few bytes): the fixed
// fields with their names, the variable ones, and the names of the optional ones present.
func wireSize(r wire.Record) int {
	n := 205 + len(r.ID) + len(r.Terminal) + len(r.IdempotencyKey) + len(r.Reference) + len(r.Currency) + len(r.Method) +
		len(r.Scheme) + len(r.State) + len(r.Kind) + len(r.Parent) + len(r.Credential) + len(r.CredentialTag) +
		len(r.PrevHash) + len(r.Hash) + len(r.MAC)
	for _, opt := range []struct {
		v    string
		name int
	}{{r.Reference, 15}, {r.Scheme, 12}, {r.Credential, 16}, {r.CredentialTag, 20}, {r.Kind, 10}, {r.Parent, 12}} {
		if opt.v != "" {
			n += opt.name
		}
	}
	return n
}

// upload marks the records as being sent and sends them (recs: batch as wireRecords
// made them).
func (s *Syncer) upload(ctx context.Context, batch []offline.Record, recs []wire.Record, acks *pendingAcks) (wire.BatchResponse, error) {
	ids := make([]string, len(batch))
	for i, r := range batch {
		ids[i] = r.ID
	}
	if err := s.Journal.AckAndMark(ctx, acks.ids, ids); err != nil {
		return wire.BatchResponse{}, err
	}
	acks.reset()
	return s.Client.UploadBatch(ctx, recs)
}

// apply records the acquirer's answers in the journal.
func (s *Syncer) apply(ctx context.Context, batch []offline.Record, resp wire.BatchResponse, rep *Report, skip map[string]bool, acks *pendingAcks) error {
	byID := make(map[string]offline.Record, len(batch))
	for _, r := range batch {
		byID[r.ID] = r
	}
	var acked []string
	for _, res := range resp.Results {
		r, ok := byID[res.ID]
		if !ok || r.Sequence != res.Sequence {
			continue // not an answer to this batch: the record stays pending
		}
		switch res.Status {
		case wire.Accepted, wire.Duplicate:
			acked = append(acked, res.ID)
			if res.Status == wire.Accepted {
				rep.Accepted++
			} else {
				rep.Duplicate++
			}
		default:
			skip[res.ID] = true
			reason := "rejected by the acquirer: " + res.Reason
			rep.Rejected = append(rep.Rejected, Rejection{Sequence: res.Sequence, ID: res.ID, Reason: res.Reason})
			if err := s.Journal.NoteError(ctx, res.ID, reason); err != nil {
				return err
			}
			if r.State == posagent.StateStored || r.State == posagent.StateUploading {
				if _, err := s.Journal.Transition(ctx, res.ID, posagent.StateFailed, reason); err != nil {
					return err
				}
			}
		}
	}
	rep.HighWater, rep.Gaps = resp.HighWater, resp.Gaps
	acks.add(acked)
	return nil
}

// pendingAcks are records the acquirer holds that the journal does not know it holds yet.
type pendingAcks struct {
	ids []string
	has map[string]bool
}

func (a *pendingAcks) add(ids []string) {
	if a.has == nil {
		a.has = map[string]bool{}
	}
	for _, id := range ids {
		a.ids = append(a.ids, id)
		a.has[id] = true
	}
}

func (a *pendingAcks) reset() { a.ids, a.has = nil, nil }

// flush acknowledges them in the journal.
func (a *pendingAcks) flush(ctx context.Context, j *offline.Journal) error {
	if len(a.ids) == 0 {
		return nil
	}
	if err := j.Ack(ctx, a.ids...); err != nil {
		return err
	}
	a.reset()
	return nil
}

// WireRecord is a journal record as a batch carries it. The credential is sent only for
// an offline sale still waiting for its decision (the acquirer authorizes with it once
// and does not keep it); its keyed tag, which the chain covers, is always sent when the
// sale has a credential, so the acquirer can recompute the record's hash.
func WireRecord(r offline.Record, credential string, key *offline.Key) wire.Record {
	w := wire.Record{
		ID: r.ID, Terminal: r.Terminal, Sequence: r.Sequence, IdempotencyKey: r.IdempotencyKey, Reference: r.Reference,
		CapturedAt: r.CapturedAt.UTC(), Amount: r.Amount.Minor, Currency: r.Amount.Currency.Code, Method: string(r.Method),
		Scheme: string(r.Scheme), Offline: r.Offline, State: string(r.State),
		PrevHash: hex.EncodeToString(r.PrevHash), Hash: hex.EncodeToString(r.Hash), MAC: hex.EncodeToString(r.MAC),
	}
	if r.Kind == posagent.KindRefund {
		w.Kind, w.Parent = string(r.Kind), r.Parent
	}
	if credential != "" {
		w.CredentialTag = hex.EncodeToString(key.CredentialTag([]byte(credential)))
		if r.State.Outstanding() {
			w.Credential = credential
		}
	}
	return w
}

// FollowResults reads the results feed from the cursor kept in the journal to its end,
// moves each record to approved or declined (calling OnOutcome), and keeps the cursor
// after each page. Applying a result twice (a crash before the cursor was kept) changes
// nothing: a settled record is left as it is.
func (s *Syncer) FollowResults(ctx context.Context) (Report, error) {
	var rep Report
	err := s.followResults(ctx, &rep)
	return rep, err
}

func (s *Syncer) followResults(ctx context.Context, rep *Report) error {
	v, err := s.Journal.SyncState(ctx, cursorKey)
	if err != nil {
		return err
	}
	var cursor uint64
	if v != "" {
		if cursor, err = strconv.ParseUint(v, 10, 64); err != nil {
			return fmt.Errorf("results cursor %q in the journal: %w", v, err)
		}
	}
	for {
		page, err := s.Client.Results(ctx, cursor)
		if err != nil {
			return fmt.Errorf("results after %d: %w", cursor, err)
		}
		if len(page.Results) == 0 {
			return nil
		}
		for _, res := range page.Results {
			if err := s.settle(ctx, res, rep); err != nil {
				return err
			}
		}
		if page.Next <= cursor {
			return fmt.Errorf("results feed did not advance past cursor %d", cursor)
		}
		cursor = page.Next
		if err := s.Journal.SetSyncState(ctx, cursorKey, strconv.FormatUint(cursor, 10)); err != nil {
			return err
		}
	}
}

func (s *Syncer) settle(ctx context.Context, res wire.Result, rep *Report) error {
	r, err := s.Journal.Get(ctx, res.ID)
	if errors.Is(err, offline.ErrNotFound) {
		return nil // purged, or another journal's: nothing to change here
	} else if err != nil {
		return err
	}
	if r.Sequence != res.Sequence || !r.State.Outstanding() {
		return nil
	}
	to, note := posagent.StateApproved, "approved after upload"
	if res.AuthCode != "" {
		note += " (auth code " + res.AuthCode + ")"
	}
	if res.Decision == wire.Declined {
		to, note = posagent.StateDeclined, "declined after upload: "+res.Reason
	} else if res.Decision != wire.Approved {
		return nil
	}
	r, err = s.Journal.Transition(ctx, res.ID, to, note)
	if errors.Is(err, posagent.ErrTransition) {
		return nil
	} else if err != nil {
		return err
	}
	o := Outcome{Record: r, Decision: res.Decision, Reason: res.Reason, AuthCode: res.AuthCode}
	rep.Settled++
	if to == posagent.StateDeclined {
		rep.Declined = append(rep.Declined, o)
	} else {
		rep.Approved++
	}
	if s.OnOutcome != nil {
		s.OnOutcome(o)
	}
	return nil
}

// Once drains the journal and then follows the results feed: what `posagent sync --once`
// does. The report covers both; an upload failure still lets the results be read.
func (s *Syncer) Once(ctx context.Context) (Report, error) {
	var rep Report
	derr := s.drain(ctx, &rep)
	if ctx.Err() != nil {
		return rep, derr
	}
	ferr := s.followResults(ctx, &rep)
	return rep, errors.Join(derr, ferr)
}

// Run syncs every interval until ctx ends, starting now; after a failure it waits a
// full-jitter backoff (capped at the interval) instead. report, when not nil, gets each
// round's outcome. It returns ctx's error.
func (s *Syncer) Run(ctx context.Context, interval time.Duration, report func(Report, error)) error {
	backoff := FullJitter(time.Second, interval)
	for failures := 0; ; {
		rep, err := s.Once(ctx)
		if report != nil && ctx.Err() == nil {
			report(rep, err)
		}
		pause := interval
		if err != nil {
			pause = backoff(failures)
			failures++
		} else {
			failures = 0
		}
		if err := wait.Sleep(ctx, pause); err != nil {
			return err
		}
	}
}
