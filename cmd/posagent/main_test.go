package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// run executes posagent in-process and returns its exit status and output.
func run(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = NewMain(strings.NewReader(stdin), &out, &errOut).Run(context.Background(), args)
	return code, out.String(), errOut.String()
}

const specExample = "00020101021229300012D156000000000510A93FO3230Q31280012D15600000001030812345678520441115802CN5914BEST TRANSPORT6007BEIJING64200002ZH0104最佳运输0202北京540523.7253031565502016233030412340603***0708A60086670902ME91320016A0112233449988770708123456786304A13A"

func TestMain_Version(t *testing.T) {
	code, out, _ := run(t, "", "version")
	if code != 0 || !strings.HasPrefix(out, "posagent ") {
		t.Fatalf("version: exit %d, %q", code, out)
	}
}

func TestMain_VersionFlag(t *testing.T) {
	code, out, errOut := run(t, "", "--version")
	if code != 0 || !strings.HasPrefix(out, "posagent ") {
		t.Fatalf("--version: exit %d, %q, stderr %q", code, out, errOut)
	}
}

func TestMain_UsageErrors(t *testing.T) {
	tests := [][]string{
		{"frobnicate"},
		{"qr", "parse"},
		{"qr", "parse", "a", "b"},
		{"qr", "parse", "--nope", "x"},
		{"qr", "mpm", "--name", "X"},
		{"qr", "decode"},
		{"qr", "encode", "--level", "Z", "x"},
	}
	for _, args := range tests {
		code, _, stderr := run(t, "", args...)
		if code != 2 {
			t.Errorf("%v: exit %d, want 2 (stderr %q)", args, code, stderr)
		}
		if n := strings.Count(strings.TrimRight(stderr, "\n"), "\n"); n != 0 || !strings.HasPrefix(stderr, "posagent: ") {
			t.Errorf("%v: stderr is not one line: %q", args, stderr)
		}
	}
}

func TestMain_QRParse(t *testing.T) {
	code, out, stderr := run(t, "", "qr", "parse", specExample)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var got struct {
		Format  string `json:"format"`
		CRC     string `json:"crc"`
		Objects []struct {
			ID      string            `json:"id"`
			Value   *string           `json:"value"`
			Objects []json.RawMessage `json:"objects"`
		} `json:"objects"`
		Merchant struct {
			Name, City, Country, MCC, Currency, Amount string
			Schemes                                    []string
		} `json:"merchant"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	if got.Format != "emv-mpm" || got.CRC != "A13A" || got.Merchant.Name != "BEST TRANSPORT" || got.Merchant.Amount != "23.72" {
		t.Errorf("unexpected output %+v", got)
	}
	if len(got.Objects) != 15 || got.Objects[2].ID != "29" || len(got.Objects[2].Objects) != 2 || got.Objects[2].Value != nil {
		t.Errorf("objects not in payload order with templates holding objects: %s", out)
	}
}

func TestMain_QRParseErrors(t *testing.T) {
	bent := "00020101021129370016A000000677010111011300668999999995802TH53037646304FE29" // PromptPay: no 52, 59, 60
	tests := []struct {
		name     string
		args     []string
		stdin    string
		wantCode int
		wantErr  string
	}{
		{"bad amount", []string{"qr", "parse", strings.Replace(specExample, "540523.72", "540523,72", 1)}, "", 1, "tag 63"},
		{"rule broken, strict", []string{"qr", "parse", bent}, "", 1, "--lenient"},
		{"rule broken, lenient", []string{"qr", "parse", "--lenient", bent}, "", 0, ""},
		{"stdin", []string{"qr", "parse", "-"}, specExample + "\r\n", 0, ""},
		{"garbage", []string{"qr", "parse", "hello"}, "", 1, "not an EMV"},
		{"wallet code", []string{"qr", "parse", "134567890123456789"}, "", 0, ""},
		{"CPM", []string{"qr", "parse", "hQVDUFYwMWEaTwegAAAAVVVVVw8SNFZ4kBI0WNGRIgESNF8="}, "", 0, ""},
		{"CPM truncated", []string{"qr", "parse", "hQVDUFYwMWEaTwegAAAA"}, "", 1, "cpm"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, stderr := run(t, tt.stdin, tt.args...)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d; stderr %q", code, tt.wantCode, stderr)
			}
			if tt.wantCode == 0 {
				if !json.Valid([]byte(out)) {
					t.Errorf("stdout is not JSON: %s", out)
				}
				return
			}
			if !strings.Contains(stderr, tt.wantErr) || strings.Count(strings.TrimRight(stderr, "\n"), "\n") != 0 {
				t.Errorf("stderr %q: want one line mentioning %q", stderr, tt.wantErr)
			}
		})
	}
}

func TestMain_QRClassify(t *testing.T) {
	code, out, _ := run(t, "", "qr", "classify", "]Q1134567890123456789")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	if got["kind"] != "wallet-code" || got["scheme"] != "wechat-pay" || got["online_only"] != true || got["aim"] != "]Q1" {
		t.Errorf("classification %v", got)
	}
	if strings.Contains(out, "134567890123456789") {
		t.Errorf("wallet code printed in full: %s", out)
	}
	if code, _, stderr := run(t, "", "qr", "classify", "999"); code != 1 || !strings.Contains(stderr, "unknown code") {
		t.Errorf("unknown code: exit %d, %q", code, stderr)
	}
}

// TestMain_QRMPMRoundTrip builds a code with the CLI, renders it, decodes the PNG and parses
// the decoded text strictly: the whole qr toolchain, end to end.
func TestMain_QRMPMRoundTrip(t *testing.T) {
	dir := t.TempDir()
	png := filepath.Join(dir, "code.png")
	code, out, stderr := run(t, "", "qr", "mpm", "--name", "BEST TRANSPORT", "--city", "BEIJING", "--country", "CN",
		"--mcc", "4111", "--currency", "CNY", "--amount", "23.72", "--account", "26=D15600000000,05=A93FO3230Q",
		"--account", "15=6200000000000000", "--alt-lang", "ZH", "--alt-name", "最佳运输", "--alt-city", "北京",
		"--reference", "ORDER-1", "--png", png)
	if code != 0 {
		t.Fatalf("qr mpm: exit %d: %s", code, stderr)
	}
	payload := strings.TrimSpace(out)
	if !strings.HasPrefix(payload, "000201010212") || !strings.Contains(payload, "0104最佳运输") {
		t.Fatalf("payload %q", payload)
	}
	code, decoded, stderr := run(t, "", "qr", "decode", png)
	if code != 0 {
		t.Fatalf("qr decode: exit %d: %s", code, stderr)
	}
	if got := strings.TrimSpace(decoded); got != payload {
		t.Fatalf("decoded %q, want %q", got, payload)
	}
	if code, _, stderr := run(t, "", "qr", "parse", payload); code != 0 {
		t.Fatalf("strict parse of built code: %s", stderr)
	}
}

func TestMain_QRMPMRefuses(t *testing.T) {
	base := []string{"qr", "mpm", "--city", "BEIJING", "--country", "CN", "--mcc", "4111", "--currency", "156", "--account", "26=D15600000000"}
	tests := []struct {
		name  string
		extra []string
		want  string
	}{
		{"Chinese name", []string{"--name", "便利店"}, "tag 59"},
		{"long name", []string{"--name", strings.Repeat("A", 26)}, "tag 59"},
		{"comma amount", []string{"--name", "X", "--amount", "12,50"}, "--amount"},
		{"too many decimals", []string{"--name", "X", "--amount", "12.505"}, "decimals"},
		{"bad account", []string{"--name", "X", "--account", "99=X"}, "--account"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := run(t, "", append(append([]string(nil), base...), tt.extra...)...)
			if code != 1 || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want 1 mentioning %q", code, stderr, tt.want)
			}
		})
	}
}

func TestMain_QREncodeDecode(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.png"), filepath.Join(dir, "b.png")
	for path, text := range map[string]string{a: "https://qr.alipay.com/bax01234", b: "谢谢惠顾 Thank you"} {
		if code, _, stderr := run(t, "", "qr", "encode", "--out", path, text); code != 0 {
			t.Fatalf("encode %q: %s", text, stderr)
		}
	}
	code, out, stderr := run(t, "", "qr", "decode", a, b)
	if code != 0 {
		t.Fatalf("decode: exit %d: %s", code, stderr)
	}
	want := a + ": https://qr.alipay.com/bax01234\n" + b + ": 谢谢惠顾 Thank you\n"
	if out != want {
		t.Errorf("decode printed %q, want %q", out, want)
	}
	if err := os.WriteFile(filepath.Join(dir, "blank.png"), []byte("not an image"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, stderr = run(t, "", "qr", "decode", a, filepath.Join(dir, "blank.png"), filepath.Join(dir, "missing.png"))
	if code != 1 || !strings.Contains(out, "bax01234") || !strings.Contains(stderr, "2 of 3") {
		t.Errorf("partial failure: exit %d, out %q, stderr %q", code, out, stderr)
	}
	code, out, _ = run(t, "", "qr", "encode", "--ascii", "hello")
	if code != 0 || !strings.ContainsAny(out, "█▀▄") {
		t.Errorf("ascii rendering: exit %d, %q", code, out)
	}
}

// TestMain_Hints: qr decode and print give a hint that fits the error.
func TestMain_Hints(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "notes.txt")
	os.WriteFile(text, []byte("hello\n"), 0o600)
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"currency": "CNY", "items": [{"name": "x", "quantity": 0, "unit_price": 1, "amount": 0}]}`), 0o600)
	for _, tc := range []struct {
		args        []string
		hint, avoid string
	}{
		{[]string{"qr", "decode", filepath.Join(dir, "none.png")}, "hint: check the file name", "sharper"},
		{[]string{"qr", "decode", text}, "hint: give a PNG, JPEG or GIF image", "sharper"},
		{[]string{"print", "--port", "/dev/null", filepath.Join(dir, "none.json")}, "hint: check the receipt file's name", "printer"},
		{[]string{"print", "--port", "/dev/null", bad}, "docs/receipt.md", "printer"},
	} {
		code, _, stderr := run(t, "", tc.args...)
		if code != 1 || !strings.Contains(stderr, tc.hint) || strings.Contains(stderr, tc.avoid) {
			t.Errorf("%v: exit %d, %q; want the hint %q", tc.args, code, stderr, tc.hint)
		}
	}
}
