package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent/sync/acquirer"
	"github.com/posagent/posagent/sync/wire"
)

// ledgerDB returns a SQLite store holding, for T1: an approved sale, a declined one and a
// tombstone (reversed before it arrived); for T2: an approved sale.
func ledgerDB(t *testing.T) string {
	t.Helper()
	db := "sqlite:" + filepath.Join(t.TempDir(), "a.db")
	addTerminal(t, "T1", "--db", db)
	addTerminal(t, "T2", "--db", db)
	store, err := openStore(t.Context(), db, "")
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	sale := func(terminal string, seq uint64, amount int64) wire.AuthorizationRequest {
		return wire.AuthorizationRequest{ID: terminal + "-sale-" + string(rune('0'+seq)), Sequence: seq, IdempotencyKey: terminal + "-k" + string(rune('0'+seq)),
			CapturedAt: time.Now(), Amount: amount, Currency: "CNY", Method: "wallet-code", Credential: "134567890123456789"}
	}
	for _, req := range []wire.AuthorizationRequest{sale("T2", 1, 990), sale("T1", 2, 1251), sale("T1", 1, 1250)} {
		_, err := store.Authorize(t.Context(), req.ID[:2], req, func() acquirer.Outcome {
			d := acquirer.Decide(req.Amount)
			d.ID, d.DecidedAt = req.ID, time.Now()
			return acquirer.Outcome{Response: d}
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	t3 := sale("T1", 3, 700)
	if _, err := store.Reverse(t.Context(), "T1", wire.ReversalRequest{ID: t3.ID, Sequence: 3, IdempotencyKey: t3.IdempotencyKey, Amount: 700, Currency: "CNY"}); err != nil {
		t.Fatal(err)
	}
	return db
}

func TestRun_LedgerJSON(t *testing.T) {
	db := ledgerDB(t)
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{nil, []string{"T1 1 approved 1250 online", "T1 2 declined 0 online", "T1 3 reversed 0 online", "T2 1 approved 990 online"}},
		{[]string{"--terminal", "T2"}, []string{"T2 1 approved 990 online"}},
		{[]string{"--terminal", "T9"}, nil},
	} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), append([]string{"ledger", "--db", db, "--json"}, tt.args...), &out, &errOut); code != 0 {
			t.Fatalf("%v: exit %d: %s", tt.args, code, errOut.String())
		}
		var got []string
		for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			if line == "" {
				continue
			}
			e, err := wire.Decode[wire.LedgerEntry](strings.NewReader(line))
			if err != nil {
				t.Fatalf("line %q: %v", line, err)
			}
			if e.Currency != "CNY" || e.SaleID == "" || e.IdempotencyKey == "" || e.Amount == 0 {
				t.Fatalf("entry %+v", e)
			}
			got = append(got, strings.Join([]string{e.Terminal, jsonNum(e.Sequence), e.State, jsonNum(e.Captured), e.Source}, " "))
		}
		if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
			t.Fatalf("%v: ledger\n%s\nwant\n%s", tt.args, strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
		}
	}
}

func jsonNum(v any) string { b, _ := json.Marshal(v); return string(b) }

func TestRun_LedgerTable(t *testing.T) {
	db := ledgerDB(t)
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"ledger", "--db", db}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	if len(lines) != 6 {
		t.Fatalf("%d lines, want a header, 4 sales and the totals:\n%s", len(lines), out.String())
	}
	col := strings.Index(lines[0], "STATE")
	if !strings.HasPrefix(lines[0], "TERMINAL") || col < 0 {
		t.Fatalf("header %q", lines[0])
	}
	for i, want := range []string{"approved", "declined", "reversed", "approved"} {
		if !strings.HasPrefix(lines[i+1][col:], want) {
			t.Fatalf("line %d %q: the STATE column does not hold %s (not aligned?)\n%s", i+1, lines[i+1], want, out.String())
		}
	}
	if !strings.Contains(lines[1], "12.50") || !strings.Contains(lines[4], "9.90") {
		t.Fatalf("amounts not in yuan:\n%s", out.String())
	}
	if lines[5] != "4 sales; captured 22.40 CNY" {
		t.Fatalf("totals %q", lines[5])
	}
}

func TestRun_LedgerUsage(t *testing.T) {
	for _, tt := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"ledger"}, 2, "--db"},
		{[]string{"ledger", "--db", "sqlite:" + filepath.Join(t.TempDir(), "none.db")}, 1, "no acquirer store"},
		{[]string{"ledger", "--db", "sqlite:x", "extra"}, 2, ""},
	} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), tt.args, &out, &errOut); code != tt.code || !strings.Contains(errOut.String(), tt.msg) {
			t.Errorf("%v: exit %d %q, want %d and %q", tt.args, code, errOut.String(), tt.code, tt.msg)
		}
	}
}
