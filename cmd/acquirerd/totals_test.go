package main

import (
	"bytes"
	"context"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent/sync/acquirer"
	"github.com/posagent/posagent/sync/wire"
)

// totalsDB returns a SQLite store holding, for T1 on 2026-12-01: an approved wechat-pay
// sale of 12.50 refunded 4.00, a declined one of 12.51 and an approved alipay sale of
// 20.00 captured before the period; T2's sale is another terminal's.
func totalsDB(t *testing.T) string {
	t.Helper()
	db := "sqlite:" + filepath.Join(t.TempDir(), "a.db")
	addTerminal(t, "T1", "--db", db)
	addTerminal(t, "T2", "--db", db)
	store, err := openStore(t.Context(), db, "")
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	day := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	sale := func(terminal, id string, amount int64, scheme string, at time.Time) {
		req := wire.AuthorizationRequest{ID: id, Sequence: 1, IdempotencyKey: "k-" + id, CapturedAt: at, Amount: amount, Currency: "CNY",
			Method: "wallet-code", Scheme: scheme, Credential: "134567890123456789"}
		_, err := store.Authorize(t.Context(), terminal, req, func() acquirer.Outcome {
			d := acquirer.Decide(req.Amount)
			d.ID, d.DecidedAt = req.ID, time.Now()
			return acquirer.Outcome{Response: d}
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	sale("T1", "s1", 1250, "wechat-pay", day.Add(9*time.Hour))
	sale("T1", "s2", 1251, "wechat-pay", day.Add(10*time.Hour))
	sale("T1", "s3", 2000, "alipay", day.Add(-time.Hour))
	sale("T2", "s4", 990, "wechat-pay", day.Add(9*time.Hour))
	resp, err := store.Refund(t.Context(), "T1", wire.RefundRequest{ID: "r1", Sequence: 5, IdempotencyKey: "k-r1", SaleID: "s1", Amount: 400,
		Currency: "CNY", CapturedAt: day.Add(11 * time.Hour)})
	if err != nil || resp.Decision != wire.Approved {
		t.Fatalf("refund: %+v %v", resp, err)
	}
	return db
}

var totalsPeriod = []string{"--from", "2026-12-01T08:00:00+08:00", "--to", "2026-12-02T00:00:00Z"}

func TestRun_TotalsJSON(t *testing.T) {
	db := totalsDB(t)
	var out, errOut bytes.Buffer
	if code := run(context.Background(), append([]string{"totals", "--db", db, "--terminal", "T1", "--json"}, totalsPeriod...), &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	got, err := wire.Decode[wire.Totals](strings.NewReader(out.String()))
	if err != nil {
		t.Fatalf("%q: %v", out.String(), err)
	}
	cny := func(n, v int64) wire.Tally { return wire.Tally{Count: n, Amount: map[string]int64{"CNY": v}} }
	want := wire.Totals{
		Terminal: "T1", From: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC),
		Sales:    cny(2, 2501),
		ByState:  map[string]wire.Tally{"approved": cny(1, 1250), "declined": cny(1, 1251)},
		ByMethod: map[string]wire.Tally{"wallet-code": cny(1, 1250)},
		ByScheme: map[string]wire.Tally{"wechat-pay": cny(1, 1250)},
		Refunds:  cny(1, 400),
		Captured: map[string]int64{"CNY": 850},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("totals\n%+v\nwant\n%+v", got, want)
	}
}

func TestRun_TotalsTable(t *testing.T) {
	db := totalsDB(t)
	var out, errOut bytes.Buffer
	if code := run(context.Background(), append([]string{"totals", "--db", db, "--terminal", "T1"}, totalsPeriod...), &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	want := [][]string{
		{"terminal", "T1,", "captured", "from", "2026-12-01T00:00:00Z", "to", "2026-12-02T00:00:00Z"},
		{"GROUP", "KEY", "COUNT", "AMOUNT"},
		{"sales", "all", "2", "25.01", "CNY"},
		{"state", "approved", "1", "12.50", "CNY"},
		{"state", "declined", "1", "12.51", "CNY"},
		{"method", "wallet-code", "1", "12.50", "CNY"},
		{"scheme", "wechat-pay", "1", "12.50", "CNY"},
		{"refunds", "approved", "1", "4.00", "CNY"},
		{"captured", "net", "8.50", "CNY"},
	}
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(want), out.String())
	}
	col := strings.Index(lines[1], "AMOUNT")
	for i, w := range want {
		if got := strings.Fields(lines[i]); !reflect.DeepEqual(got, w) {
			t.Fatalf("line %d: %q, want %q\n%s", i, got, w, out.String())
		}
		if i >= 2 && !strings.HasPrefix(lines[i][col:], w[len(w)-2]) {
			t.Fatalf("line %d %q: the AMOUNT column is not aligned\n%s", i, lines[i], out.String())
		}
	}
}

func TestRun_TotalsUsage(t *testing.T) {
	db := totalsDB(t)
	for _, tt := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"totals", "--db", db, "--terminal", "T1"}, 2, "--from and --to"},
		{[]string{"totals", "--db", db, "--terminal", "T1", "--from", "yesterday", "--to", "2026-12-02T00:00:00Z"}, 2, "RFC 3339"},
		{[]string{"totals", "--db", db, "--terminal", "T1", "--from", "2026-12-02T00:00:00Z", "--to", "2026-12-01T00:00:00Z"}, 2, "before --to"},
		{append([]string{"totals", "--db", "sqlite:" + filepath.Join(t.TempDir(), "none.db"), "--terminal", "T1"}, totalsPeriod...), 1, "no acquirer store"},
	} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), tt.args, &out, &errOut); code != tt.code || !strings.Contains(errOut.String(), tt.msg) {
			t.Errorf("%v: exit %d %q, want %d and %q", tt.args, code, errOut.String(), tt.code, tt.msg)
		}
	}
}
