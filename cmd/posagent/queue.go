package main

import (
	"context"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/posagent/posagent"
	"github.com/posagent/posagent/offline"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

func init() { commands = append(commands, (*Main).queueCommand) }

// defaultJournal is where the agent keeps its journal on a terminal.
const defaultJournal = "/var/lib/posagent/journal.db"

// queueFlags are the flags every queue subcommand shares.
type queueFlags struct {
	journal string
	keyFile string
	config  string
	// journalSet, keySet: given on the command line or in the environment, so the
	// config's values do not replace them.
	journalSet, keySet bool
}

// defaultConfigFile is where 'posagent provision' and the package put the agent's config.
const defaultConfigFile = "/etc/posagent/posagent.yaml"

// fromConfig fills the journal and key file the user did not give from the agent's config:
// --config, else $POSAGENT_CONFIG, else defaultConfigFile when it exists.
func (f *queueFlags) fromConfig() error {
	if f.journalSet && (f.keySet || f.keyFile != "") {
		return nil
	}
	cfg, found, err := agentConfig(f.config)
	if err != nil {
		return withHint(err, "fix the config, or give the journal with --journal")
	}
	if !found {
		return nil // the built-in defaults stand
	}
	if !f.journalSet && cfg.Journal != "" {
		f.journal = cfg.Journal
	}
	if !f.keySet && f.keyFile == "" && cfg.KeyFile != "" {
		f.keyFile = cfg.KeyFile
	}
	return nil
}

func (m *Main) queueCommand() *cobra.Command {
	f := &queueFlags{}
	cmd := &cobra.Command{
		Use:   "queue",
		Short: "Inspect, export and verify the offline journal",
		Long: `The queue commands read the agent's journal of sales (every sale, online or offline,
with its sequence number, state and place in the hash chain). They open it read-only, so
they are safe while the agent runs. Credentials are always shown masked.

  ls        list records (optionally of one state)
  show      one record with its history, by id or sequence number
  stats     counts by state, what is outstanding offline, file sizes
  export    every record as JSON lines or CSV, for the acquirer or a spreadsheet
  verify    walk the hash chain and run SQLite's full integrity check
  release   lift the hold on offline sales after a damaged journal was checked

--journal defaults to $POSAGENT_JOURNAL, else the journal of the agent's config (--config,
$POSAGENT_CONFIG, or ` + defaultConfigFile + ` when it exists), else ` + defaultJournal + `.
--key-file (default $POSAGENT_KEY_FILE, else the config's key_file) lets verify check every
record's HMAC and credential.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	journal := os.Getenv("POSAGENT_JOURNAL")
	if journal == "" {
		journal = defaultJournal
	}
	cmd.PersistentFlags().StringVar(&f.journal, "journal", journal, "the journal database file")
	cmd.PersistentFlags().StringVar(&f.keyFile, "key-file", os.Getenv("POSAGENT_KEY_FILE"), "the provisioned key file (for verify)")
	cmd.PersistentFlags().StringVar(&f.config, "config", os.Getenv("POSAGENT_CONFIG"), "the agent's YAML config, for its journal and key file")
	cmd.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		f.journalSet = cmd.Flags().Changed("journal") || os.Getenv("POSAGENT_JOURNAL") != ""
		f.keySet = cmd.Flags().Changed("key-file")
		return f.fromConfig()
	}
	cmd.AddCommand(m.queueLsCommand(f), m.queueShowCommand(f), m.queueStatsCommand(f), m.queueExportCommand(f),
		m.queueVerifyCommand(f), m.queueReleaseCommand(f))
	return cmd
}

// open opens the journal read-only (or for writing, for release), with the key if given.
func (f *queueFlags) open(write bool) (*offline.Journal, error) {
	opts := offline.Options{ReadOnly: !write}
	if f.keyFile != "" {
		k, err := offline.LoadKey(f.keyFile, false)
		if err != nil {
			return nil, withHint(err, "pass the terminal's provisioned key file with --key-file")
		}
		opts.Key = k
	}
	j, err := offline.Open(f.journal, opts)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil, withHint(err, "give the journal's path with --journal or POSAGENT_JOURNAL")
	case errors.Is(err, offline.ErrNotJournal):
		return nil, withHint(err, "check the path: the agent's journal is journal.db in its data directory ("+defaultJournal+" on a terminal)")
	case errors.Is(err, offline.ErrCorrupt):
		return nil, withHint(err, "the file is damaged; keep it for analysis and call support")
	case err != nil:
		return nil, err
	}
	return j, nil
}

func parseStateFlag(s string) (posagent.State, error) {
	if s == "" {
		return "", nil
	}
	st, err := posagent.ParseState(s)
	if err != nil {
		return "", usageError{err}
	}
	return st, nil
}

func (m *Main) queueLsCommand(f *queueFlags) *cobra.Command {
	var state string
	var limit int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "ls [--state S] [--limit N] [--json]",
		Short: "List journal records in sequence order",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := parseStateFlag(state)
			if err != nil {
				return err
			}
			j, err := f.open(false)
			if err != nil {
				return err
			}
			defer j.Close()
			recs, err := j.List(cmd.Context(), offline.Filter{State: st, Limit: limit})
			if err != nil {
				return err
			}
			if asJSON {
				out := make([]recordView, len(recs))
				for i, r := range recs {
					out[i] = view(r)
				}
				return m.writeJSON(out)
			}
			tw := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SEQ\tID\tSTATE\tAMOUNT\tMETHOD\tSCHEME\tCREDENTIAL\tCAPTURED\tATTEMPTS\tFLAGS")
			for _, r := range recs {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s %s\t%s\t%s\t%s\t%s\t%d\t%s\n", r.Sequence, r.ID, r.State,
					offline.FormatAmount(r.Amount.Minor, r.Amount.Currency), r.Amount.Currency.Code, r.Method, queueDash(string(r.Scheme)),
					queueDash(r.CredentialMasked), r.CapturedAt.Local().Format("2006-01-02 15:04:05"), r.Attempts, flags(r))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&state, "state", "", "only records in this state (authorizing, stored, uploading, approved, declined, canceled, failed)")
	cmd.Flags().IntVar(&limit, "limit", 0, "at most this many records (0: all)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array instead of a table")
	return cmd
}

func queueDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func flags(r offline.Record) string {
	var f []string
	if r.Offline {
		f = append(f, "offline")
	}
	if !r.AckedAt.IsZero() {
		f = append(f, "acked")
	}
	if r.Overdue {
		f = append(f, "OVERDUE")
	}
	if len(f) == 0 {
		return "-"
	}
	return strings.Join(f, ",")
}

func (m *Main) queueShowCommand(f *queueFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "show ID|SEQUENCE",
		Short: "Show one record and its history as JSON",
		Args:  exactArgs(1, "a record id or sequence number"),
		RunE: func(cmd *cobra.Command, args []string) error {
			j, err := f.open(false)
			if err != nil {
				return err
			}
			defer j.Close()
			var r offline.Record
			if seq, perr := strconv.ParseUint(args[0], 10, 64); perr == nil {
				r, err = j.BySequence(cmd.Context(), seq)
			} else {
				r, err = j.Get(cmd.Context(), args[0])
			}
			if errors.Is(err, offline.ErrNotFound) {
				return withHint(invalid(fmt.Errorf("no record %q in %s", args[0], f.journal)), "list records with 'posagent queue ls'")
			}
			if err != nil {
				return err
			}
			v := view(r)
			for _, c := range r.History {
				v.History = append(v.History, changeView{At: c.At.Format(time.RFC3339Nano), From: string(c.From), To: string(c.To), Note: c.Note})
			}
			return m.writeJSON(v)
		},
	}
}

// recordView is a record as the CLI prints and exports it: amounts in minor units and as
// a decimal, times in RFC 3339 UTC, hashes in hex, the credential masked.
type recordView struct {
	ID             string       `json:"id"`
	Sequence       uint64       `json:"sequence"`
	Terminal       string       `json:"terminal"`
	IdempotencyKey string       `json:"idempotency_key"`
	Reference      string       `json:"reference"`
	CapturedAt     string       `json:"captured_at"`
	Amount         int64        `json:"amount"`
	Currency       string       `json:"currency"`
	Decimal        string       `json:"amount_decimal"`
	Method         string       `json:"method"`
	Scheme         string       `json:"scheme"`
	Credential     string       `json:"credential"`
	Offline        bool         `json:"offline"`
	State          string       `json:"state"`
	Attempts       int          `json:"attempts"`
	LastError      string       `json:"last_error"`
	UpdatedAt      string       `json:"updated_at"`
	AckedAt        string       `json:"acked_at"`
	Overdue        bool         `json:"overdue"`
	PrevHash       string       `json:"prev_hash"`
	Hash           string       `json:"hash"`
	MAC            string       `json:"hmac"`
	History        []changeView `json:"history,omitempty"`
}

type changeView struct {
	At   string `json:"at"`
	From string `json:"from"`
	To   string `json:"to"`
	Note string `json:"note"`
}

var csvHeader = []string{"sequence", "id", "terminal", "idempotency_key", "reference", "captured_at", "amount", "currency",
	"amount_decimal", "method", "scheme", "credential", "offline", "state", "attempts", "last_error", "updated_at", "acked_at",
	"overdue", "prev_hash", "hash", "hmac"}

func (v recordView) csv() []string {
	return []string{strconv.FormatUint(v.Sequence, 10), v.ID, v.Terminal, v.IdempotencyKey, v.Reference, v.CapturedAt,
		strconv.FormatInt(v.Amount, 10), v.Currency, v.Decimal, v.Method, v.Scheme, v.Credential, strconv.FormatBool(v.Offline),
		v.State, strconv.Itoa(v.Attempts), v.LastError, v.UpdatedAt, v.AckedAt, strconv.FormatBool(v.Overdue), v.PrevHash, v.Hash, v.MAC}
}

func view(r offline.Record) recordView {
	ts := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02T15:04:05.000Z07:00")
	}
	return recordView{
		ID: r.ID, Sequence: r.Sequence, Terminal: r.Terminal, IdempotencyKey: r.IdempotencyKey, Reference: r.Reference,
		CapturedAt: ts(r.CapturedAt), Amount: r.Amount.Minor, Currency: r.Amount.Currency.Code, Decimal: r.Amount.String(),
		Method: string(r.Method), Scheme: string(r.Scheme), Credential: r.CredentialMasked, Offline: r.Offline,
		State: string(r.State), Attempts: r.Attempts, LastError: r.LastError, UpdatedAt: ts(r.UpdatedAt), AckedAt: ts(r.AckedAt),
		Overdue: r.Overdue, PrevHash: hex.EncodeToString(r.PrevHash), Hash: hex.EncodeToString(r.Hash), MAC: hex.EncodeToString(r.MAC),
	}
}

func (m *Main) queueStatsCommand(f *queueFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "stats",
		Short: "Counts by state, what is outstanding offline, file sizes (JSON)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			j, err := f.open(false)
			if err != nil {
				return err
			}
			defer j.Close()
			st, err := j.Stats(cmd.Context())
			if err != nil {
				return err
			}
			type outstanding struct {
				Count   int               `json:"count"`
				Amounts map[string]string `json:"amounts"`
				Oldest  string            `json:"oldest,omitempty"`
				Overdue int               `json:"overdue"`
			}
			type anchor struct {
				Sequence uint64 `json:"sequence"`
				Hash     string `json:"hash"`
				PurgedAt string `json:"purged_at"`
			}
			out := struct {
				Journal     string         `json:"journal"`
				JournalID   string         `json:"journal_id"`
				Terminal    string         `json:"terminal"`
				Records     int            `json:"records"`
				ByState     map[string]int `json:"by_state"`
				Outstanding outstanding    `json:"outstanding"`
				Unacked     int            `json:"unacknowledged"`
				FirstSeq    uint64         `json:"first_sequence"`
				LastSeq     uint64         `json:"last_sequence"`
				Anchor      *anchor        `json:"anchor,omitempty"`
				Hold        string         `json:"hold,omitempty"`
				FileBytes   int64          `json:"file_bytes"`
				WALBytes    int64          `json:"wal_bytes"`
			}{
				Journal: j.Path(), JournalID: st.JournalID, Terminal: st.Terminal, Records: st.Records, ByState: map[string]int{},
				Outstanding: outstanding{Count: st.Outstanding.Count, Amounts: map[string]string{}, Overdue: st.Overdue},
				Unacked:     st.Unacked, FirstSeq: st.FirstSeq, LastSeq: st.LastSeq, Hold: st.Hold, FileBytes: st.FileBytes, WALBytes: st.WALBytes,
			}
			for s, n := range st.ByState {
				out.ByState[string(s)] = n
			}
			for c, a := range st.Outstanding.Amounts {
				cur, err := posagent.LookupCurrency(c)
				if err != nil {
					out.Outstanding.Amounts[c] = strconv.FormatInt(a, 10)
					continue
				}
				out.Outstanding.Amounts[c] = posagent.FormatMinor(a, cur.Minor)
			}
			if !st.Outstanding.Oldest.IsZero() {
				out.Outstanding.Oldest = st.Outstanding.Oldest.Format(time.RFC3339)
			}
			if st.Anchor != nil {
				out.Anchor = &anchor{st.Anchor.Sequence, hex.EncodeToString(st.Anchor.Hash), st.Anchor.PurgedAt.Format(time.RFC3339)}
			}
			return m.writeJSON(out)
		},
	}
}

func (m *Main) queueExportCommand(f *queueFlags) *cobra.Command {
	var format, outPath, state string
	cmd := &cobra.Command{
		Use:   "export [--format jsonl|csv] [--out FILE] [--state S]",
		Short: "Export records in sequence order as JSON lines or CSV",
		Long: `Export every record (or those in one state) in sequence order, one JSON object per line
(jsonl, the default) or as CSV with a header row, to standard output or --out FILE. The
credential is masked; hashes and HMACs are hex. A progress bar is shown on standard error
when it is a terminal.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "jsonl" && format != "csv" {
				return usageError{fmt.Errorf("--format %q: want jsonl or csv", format)}
			}
			st, err := parseStateFlag(state)
			if err != nil {
				return err
			}
			j, err := f.open(false)
			if err != nil {
				return err
			}
			defer j.Close()
			var w io.Writer = m.Stdout
			var file *os.File
			if outPath != "" && outPath != "-" {
				if file, err = os.OpenFile(outPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600); err != nil {
					return fmt.Errorf("export: %w", err)
				}
				defer file.Close()
				w = file
			}
			n, err := m.export(cmd.Context(), j, w, format, st)
			if err == nil && file != nil {
				if err = file.Sync(); err == nil {
					err = file.Close()
				}
			}
			if err != nil {
				return fmt.Errorf("export: %w", err)
			}
			if file != nil {
				fmt.Fprintf(m.Stderr, "exported %d records to %s\n", n, outPath)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "jsonl", "jsonl or csv")
	cmd.Flags().StringVarP(&outPath, "out", "o", "", "write to FILE instead of standard output")
	cmd.Flags().StringVar(&state, "state", "", "only records in this state")
	return cmd
}

// isTerminal reports whether w is a terminal (the progress bar's condition).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func (m *Main) export(ctx context.Context, j *offline.Journal, w io.Writer, format string, st posagent.State) (int, error) {
	var bar *progressbar.ProgressBar
	if isTerminal(m.Stderr) {
		stats, err := j.Stats(ctx)
		if err != nil {
			return 0, err
		}
		total := stats.Records
		if st != "" {
			total = stats.ByState[st]
		}
		bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(m.Stderr), progressbar.OptionSetDescription("export"),
			progressbar.OptionShowCount(), progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish())
	}
	var cw *csv.Writer
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	if format == "csv" {
		cw = csv.NewWriter(w)
		if err := cw.Write(csvHeader); err != nil {
			return 0, err
		}
	}
	n := 0
	err := j.Each(ctx, offline.Filter{State: st}, func(r offline.Record) error {
		n++
		if bar != nil {
			bar.Add(1)
		}
		if cw != nil {
			return cw.Write(view(r).csv())
		}
		return enc.Encode(view(r))
	})
	if cw != nil {
		cw.Flush()
		if err == nil {
			err = cw.Error()
		}
	}
	if bar != nil {
		bar.Finish()
	}
	return n, err
}

func (m *Main) queueVerifyCommand(f *queueFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "verify [--key-file FILE]",
		Short: "Walk the hash chain and run SQLite's full integrity check; exit 1 on any problem",
		Long: `Walk the hash chain from the purge anchor (or the first record) in sequence order, and
report the first broken link: a gap in the sequence, a record whose hash does not match its
contents or its predecessor, and, with --key-file, an HMAC that does not match or a
credential that does not decrypt. Then run SQLite's full PRAGMA integrity_check.
Exit status 0 when both hold, 1 otherwise.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			j, err := f.open(false)
			if err != nil {
				return err
			}
			defer j.Close()
			rep, err := j.Verify(cmd.Context())
			if errors.Is(err, offline.ErrWrongKey) {
				return withHint(fmt.Errorf("%s: %w", f.keyFile, err), "pass this terminal's provisioned key file with --key-file (POSAGENT_KEY_FILE); the journal is not damaged by this")
			}
			if err != nil {
				return err
			}
			from := "the first record"
			if rep.Anchor != nil {
				from = fmt.Sprintf("the purge anchor at sequence %d", rep.Anchor.Sequence)
			}
			mac := "hmac checked"
			if !rep.MACChecked {
				mac = "hmac not checked (no --key-file)"
			}
			if rep.Broken != nil {
				fmt.Fprintf(m.Stdout, "chain: BROKEN at sequence %d: %s\n", rep.Broken.Sequence, rep.Broken.Reason)
				return withHint(fmt.Errorf("verify %s: %w", f.journal, rep.Broken), "keep the file and call support; do not delete records")
			}
			span := "no records"
			if rep.Records > 0 {
				span = fmt.Sprintf("sequences %d..%d", rep.FirstSeq, rep.LastSeq)
			}
			fmt.Fprintf(m.Stdout, "chain: ok, %d records (%s) from %s, %s\n", rep.Records, span, from, mac)
			if err := j.IntegrityCheck(cmd.Context()); err != nil {
				fmt.Fprintln(m.Stdout, "integrity: FAILED")
				return withHint(err, "keep the file and call support")
			}
			fmt.Fprintln(m.Stdout, "integrity: ok")
			return nil
		},
	}
}

func (m *Main) queueReleaseCommand(f *queueFlags) *cobra.Command {
	var note string
	cmd := &cobra.Command{
		Use:   "release --note TEXT",
		Short: "Lift the hold on offline sales after a damaged journal was checked",
		Long: `When the agent finds its journal damaged, it moves the file aside (never overwriting it),
starts a fresh journal and refuses offline sales until a technician has looked at the
damaged file. release records who checked it and lets offline sales resume.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(note) == "" {
				return usageError{errors.New("release needs --note saying who checked the damaged journal and what was done")}
			}
			j, err := f.open(true)
			if err != nil {
				return err
			}
			defer j.Close()
			hold := j.Hold()
			if hold == "" {
				fmt.Fprintln(m.Stdout, "offline sales were not held")
				return nil
			}
			if err := j.Release(cmd.Context(), note); err != nil {
				return err
			}
			fmt.Fprintf(m.Stdout, "released: %s\n", hold)
			return nil
		},
	}
	cmd.Flags().StringVar(&note, "note", "", "who checked the damaged journal and what was done")
	return cmd
}
