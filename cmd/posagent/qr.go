package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/posagent/posagent"
	"github.com/posagent/posagent/qr"
	"github.com/spf13/cobra"
)

func (m *Main) qrCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "qr",
		Short: "Read, build, render and decode payment QR codes",
		Long: `The qr commands work on payment codes without any hardware:

  parse      decode an EMV merchant-presented (MPM) or consumer-presented (CPM) payload to JSON
  classify   tell what a scanned code is (EMV, wallet payment code, merchant URL) as JSON
  mpm        build an EMV merchant-presented payload (and optionally its PNG)
  encode     render any text as a QR image (PNG or terminal)
  decode     read QR codes from image files (PNG, JPEG, GIF)

PAYLOAD, CODE and TEXT may be "-" to read standard input.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(m.qrParseCommand(), m.qrClassifyCommand(), m.qrMPMCommand(), m.qrEncodeCommand(), m.qrDecodeCommand())
	return cmd
}

// argOrStdin returns the argument, or standard input when it is "-", without the trailing
// line ending a shell or a scanner adds.
func (m *Main) argOrStdin(arg string) (string, error) {
	if arg != "-" {
		return arg, nil
	}
	b, err := io.ReadAll(io.LimitReader(m.Stdin, qr.MaxPayload+2))
	if err != nil {
		return "", fmt.Errorf("read standard input: %w", err)
	}
	if len(b) > qr.MaxPayload+1 {
		return "", invalid(fmt.Errorf("standard input is more than %d bytes, more than any QR code holds", qr.MaxPayload))
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// writeJSON prints v as indented JSON without HTML escaping (names stay readable).
func (m *Main) writeJSON(v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("encode json: %w", err)
	}
	_, err := m.Stdout.Write(buf.Bytes())
	return err
}

func (m *Main) qrParseCommand() *cobra.Command {
	var lenient, reveal bool
	cmd := &cobra.Command{
		Use:   "parse [--lenient] [--reveal] PAYLOAD|-",
		Short: "Decode an EMV QR payload (MPM or CPM) or a wallet code to JSON",
		Long: `Decode a payment QR payload and print it as JSON.

An EMV merchant-presented payload ("000201...") prints its data objects in payload order
(templates hold "objects"), the CRC and a merchant summary. Strict mode (the default)
applies every rule of the EMV MPM specification; --lenient reads codes from the field
that bend the field rules and lists what they break under "warnings". A consumer-presented
payload (base64, "hQVDUFYw...") prints its TLV tree, with the card number (5A) and track 2
(57) masked unless --reveal is given. A wallet payment code prints its classification.`,
		Args: exactArgs(1, "one PAYLOAD (or - for standard input)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			payload, err := m.argOrStdin(args[0])
			if err != nil {
				return err
			}
			code, _ := qr.Clean(payload)
			switch {
			case strings.HasPrefix(code, "00"):
				mode := qr.Strict
				if lenient {
					mode = qr.Lenient
				}
				mpm, err := qr.ParseMPM(code, mode)
				if err != nil {
					hint := "check the payload was copied whole"
					if !lenient && errors.Is(err, qr.ErrRule) {
						hint = "the code breaks an EMV rule; --lenient reads it and lists the rules it breaks"
					}
					return withHint(fmt.Errorf("parse emv mpm: %w", err), hint)
				}
				return m.writeJSON(mpm)
			case strings.HasPrefix(code, "hQVD"):
				cpm, err := qr.DecodeCPM(code)
				if err != nil {
					return withHint(fmt.Errorf("parse emv cpm: %w", err), "check the payload was copied whole")
				}
				if reveal {
					return m.writeJSON(cpm)
				}
				return m.writeJSON(cpm.Masked())
			}
			cl := qr.Classify(payload)
			if cl.Kind == qr.KindUnknown {
				return withHint(invalid(fmt.Errorf("parse: not an EMV QR payload or a known wallet code: %s", cl.Reason)),
					"an EMV merchant-presented payload starts with 000201, a consumer-presented one with hQVDUFYw")
			}
			return m.writeJSON(struct {
				Format string `json:"format"`
				qr.Classification
			}{string(cl.Kind), cl})
		},
	}
	cmd.Flags().BoolVar(&lenient, "lenient", false, "accept codes that break field rules; list the breaks as warnings")
	cmd.Flags().BoolVar(&reveal, "reveal", false, "show a consumer-presented code's card number (5A) and track 2 (57) unmasked (technicians only)")
	return cmd
}

func (m *Main) qrClassifyCommand() *cobra.Command {
	var tablePath string
	cmd := &cobra.Command{
		Use:   "classify [--table FILE] CODE|-",
		Short: "Tell what a scanned code is: EMV MPM/CPM, wallet payment code, merchant URL",
		Long: `Classify a scanned code and print JSON: {"kind", "scheme", "online_only", ...}.

Scanner noise is removed first (white space, CR/LF, an AIM identifier such as "]Q1").
Wallet payment codes are credentials: the output shows them masked. The table of wallet
prefixes, merchant URLs and scheme identifiers is built in; --table FILE replaces it
(same JSON form as qr/table.json in the source). An unknown code exits 1 with the reason.`,
		Args: exactArgs(1, "one CODE (or - for standard input)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			code, err := m.argOrStdin(args[0])
			if err != nil {
				return err
			}
			c := &qr.Classifier{Table: qr.DefaultTable()}
			if tablePath != "" {
				f, err := os.Open(tablePath)
				if err != nil {
					return withHint(fmt.Errorf("open classification table: %w", err), "give the path of a JSON table like qr/table.json")
				}
				defer f.Close()
				if c.Table, err = qr.LoadTable(f); err != nil {
					return invalid(err)
				}
			}
			cl := c.Classify(code)
			if err := m.writeJSON(cl); err != nil {
				return err
			}
			if cl.Kind == qr.KindUnknown {
				return invalid(fmt.Errorf("classify: unknown code: %s", cl.Reason))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&tablePath, "table", "", "classification table (JSON) to use instead of the built-in one")
	return cmd
}

func (m *Main) qrMPMCommand() *cobra.Command {
	var (
		mc                    qr.MerchantCode
		accounts              []string
		bill, terminal, store string
		reference, purpose    string
		pngPath               string
		size                  int
		static, dynamic       bool
	)
	cmd := &cobra.Command{
		Use:   "mpm --name N --city C --country CC --mcc NNNN --currency NNN [--amount A] --account ID=GUI[,SUB=VAL...]...",
		Short: "Build an EMV merchant-presented payload (strict), optionally as a PNG",
		Long: `Build an EMV merchant-presented QR payload and print it. The payload is checked by
every rule of the EMV MPM specification before it is printed, so it parses back strictly.

--account takes ID=VALUE for the primitives 02-25 (e.g. 15=6200... for UnionPay) or
ID=GUI[,SUB=VALUE...] for the templates 26-51 (e.g. 26=D15600000000,05=A93FO3230Q); repeat
it for a code payable with several schemes. --currency is the ISO 4217 numeric code (156)
or the alphabetic one (CNY). A code with --amount is dynamic (point of initiation 12)
unless --static is given. The merchant name and city are printable ASCII; put a Chinese
(or other) name in --alt-name with --alt-lang. --png FILE also renders the code.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, req := range []string{"name", "city", "country", "mcc", "currency"} {
				if !cmd.Flags().Changed(req) {
					return usageError{fmt.Errorf("qr mpm needs --%s", req)}
				}
			}
			if len(accounts) == 0 {
				return usageError{errors.New("qr mpm needs at least one --account ID=GUI[,SUB=VALUE...]")}
			}
			if static && dynamic {
				return usageError{errors.New("qr mpm: --static and --dynamic exclude each other")}
			}
			cur, err := posagent.LookupCurrency(mc.Currency)
			if err != nil {
				return withHint(invalid(err), "give the ISO 4217 numeric code, e.g. 156 for CNY")
			}
			mc.Currency = cur.Numeric
			if mc.Amount != "" {
				if _, err := posagent.ParseDecimal(mc.Amount, cur.Minor); err != nil {
					return withHint(invalid(fmt.Errorf("--amount: %w", err)), fmt.Sprintf("write the amount in %s with '.' as the decimal mark, e.g. 12.50", cur.Code))
				}
			}
			mc.Dynamic = dynamic || (mc.Amount != "" && !static)
			for _, a := range accounts {
				o, err := qr.ParseAccount(a)
				if err != nil {
					return withHint(invalid(fmt.Errorf("--account: %w", err)), "e.g. --account 26=D15600000000,05=A93FO3230Q or --account 15=6200...")
				}
				mc.Accounts = append(mc.Accounts, o)
			}
			for _, kv := range []struct{ id, v string }{{"01", bill}, {"03", store}, {"05", reference}, {"07", terminal}, {"08", purpose}} {
				if kv.v != "" {
					mc.Additional = append(mc.Additional, qr.Object{ID: kv.id, Value: kv.v, Offset: -1})
				}
			}
			payload, err := qr.BuildMPM(mc.Objects())
			if err != nil {
				return withHint(fmt.Errorf("build emv mpm: %w", err), "fix the flag for that tag (see 'posagent qr mpm --help')")
			}
			if pngPath != "" {
				if err := writePNG(payload, pngPath, size); err != nil {
					return err
				}
			}
			_, err = fmt.Fprintln(m.Stdout, payload)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&mc.Name, "name", "", "merchant name (tag 59), printable ASCII, at most 25 characters")
	f.StringVar(&mc.City, "city", "", "merchant city (tag 60), at most 15 characters")
	f.StringVar(&mc.Country, "country", "", "country code (tag 58), ISO 3166-1 alpha-2, e.g. CN")
	f.StringVar(&mc.MCC, "mcc", "", "merchant category code (tag 52), four digits")
	f.StringVar(&mc.Currency, "currency", "", "currency (tag 53), ISO 4217 numeric (156) or alphabetic (CNY)")
	f.StringVar(&mc.Amount, "amount", "", "transaction amount (tag 54), e.g. 23.72; omit for a static code")
	f.StringVar(&mc.PostalCode, "postal-code", "", "postal code (tag 61)")
	f.StringArrayVar(&accounts, "account", nil, "merchant account: ID=VALUE (02-25) or ID=GUI[,SUB=VALUE...] (26-51); repeatable")
	f.StringVar(&bill, "bill", "", "bill number (tag 62.01)")
	f.StringVar(&store, "store", "", "store label (tag 62.03)")
	f.StringVar(&reference, "reference", "", "reference label (tag 62.05), e.g. the order reference")
	f.StringVar(&terminal, "terminal", "", "terminal label (tag 62.07)")
	f.StringVar(&purpose, "purpose", "", "purpose of transaction (tag 62.08)")
	f.StringVar(&mc.AltLanguage, "alt-lang", "", "language of the alternate name (tag 64.00), ISO 639-1, e.g. ZH")
	f.StringVar(&mc.AltName, "alt-name", "", "merchant name in that language (tag 64.01), any script")
	f.StringVar(&mc.AltCity, "alt-city", "", "merchant city in that language (tag 64.02)")
	f.BoolVar(&static, "static", false, "mark the code static (01=11) even with an amount")
	f.BoolVar(&dynamic, "dynamic", false, "mark the code dynamic (01=12) even without an amount")
	f.StringVar(&pngPath, "png", "", "also render the code to this PNG file")
	f.IntVar(&size, "size", 0, "PNG size in pixels (default: 8 pixels per module)")
	return cmd
}

// writePNG renders text as a QR code into a PNG file, replacing it atomically.
func writePNG(text, path string, size int) error {
	code, err := qr.Encode(text, qr.EncodeOptions{})
	if err != nil {
		return fmt.Errorf("render qr: %w", err)
	}
	var buf bytes.Buffer
	if err := code.WritePNG(&buf, size); err != nil {
		return fmt.Errorf("render qr: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		return withHint(fmt.Errorf("write png: %w", err), "check the directory exists and is writable")
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write png: %w", err)
	}
	return nil
}

func (m *Main) qrEncodeCommand() *cobra.Command {
	var (
		out         string
		size        int
		ascii       bool
		invertASCII bool
		level       string
	)
	cmd := &cobra.Command{
		Use:   "encode [--out FILE.png] [--size PX] [--ascii] TEXT|-",
		Short: "Render text as a QR code: PNG file, or --ascii in the terminal",
		Long: `Render any text as a QR code. Non-ASCII text is written in Byte mode with an ECI
header for UTF-8, so wallets read it back exactly. The error-correction level is chosen
for the payload (the highest that keeps the code small) unless --level is given.
With --out the PNG goes to that file; with --ascii (or no --out) the code is drawn in the
terminal with block characters.`,
		Args: exactArgs(1, "one TEXT (or - for standard input)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			text, err := m.argOrStdin(args[0])
			if err != nil {
				return err
			}
			opts := qr.EncodeOptions{}
			if level != "" {
				if opts.Level, err = parseLevel(level); err != nil {
					return err
				}
			}
			code, err := qr.Encode(text, opts)
			if err != nil {
				return invalid(fmt.Errorf("encode qr: %w", err))
			}
			if out != "" {
				var buf bytes.Buffer
				if err := code.WritePNG(&buf, size); err != nil {
					return fmt.Errorf("encode qr: %w", err)
				}
				if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
					return withHint(fmt.Errorf("write png: %w", err), "check the directory exists and is writable")
				}
			}
			if ascii || out == "" {
				_, err = io.WriteString(m.Stdout, code.ASCII(invertASCII))
			}
			return err
		},
	}
	cmd.Flags().StringVarP(&out, "out", "o", "", "write the QR code to this PNG file")
	cmd.Flags().IntVar(&size, "size", 0, "PNG size in pixels (default: 8 pixels per module)")
	cmd.Flags().BoolVar(&ascii, "ascii", false, "draw the code in the terminal (the default without --out)")
	cmd.Flags().BoolVar(&invertASCII, "invert", false, "with --ascii: for terminals with dark text on a light background")
	cmd.Flags().StringVar(&level, "level", "", "error correction: L, M, Q or H (default: chosen for the payload)")
	return cmd
}

func parseLevel(s string) (qr.Level, error) {
	for _, l := range []qr.Level{qr.LevelL, qr.LevelM, qr.LevelQ, qr.LevelH} {
		if strings.EqualFold(s, l.String()) {
			return l, nil
		}
	}
	return 0, usageError{fmt.Errorf("--level %q must be L, M, Q or H", s)}
}

func (m *Main) qrDecodeCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "decode FILE...",
		Short: "Read QR codes from image files (PNG, JPEG, GIF); one line per file",
		Long: `Decode the QR code in each image file and print its text, one line per file (with
several files, "FILE: TEXT"). Camera frames are fine: small, rotated, skewed, blurred,
noisy, unevenly lit or light-on-dark codes are retried with pre-processing. Exits 1 if any
file failed; the others are still printed.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError{errors.New("qr decode takes one or more image files")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			var failed []string
			var firstErr error
			for _, path := range args {
				text, err := qr.DecodeFile(path)
				if err != nil {
					failed = append(failed, path)
					if firstErr == nil {
						firstErr = err
					}
					continue
				}
				if len(args) > 1 {
					fmt.Fprintf(m.Stdout, "%s: %s\n", path, text)
				} else {
					fmt.Fprintln(m.Stdout, text)
				}
			}
			switch {
			case len(failed) == 1:
				return withHint(invalid(firstErr), decodeHint(firstErr))
			case len(failed) > 1:
				return withHint(invalid(fmt.Errorf("%d of %d files failed (%s); first: %w", len(failed), len(args), strings.Join(failed, ", "), firstErr)),
					decodeHint(firstErr))
			}
			return nil
		},
	}
}

// decodeHint says what to do about an image qr decode could not read: the hint fits the
// error (a missing file is not a blurred photo).
func decodeHint(err error) string {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "check the file name"
	case errors.Is(err, fs.ErrPermission):
		return "check the file's permissions"
	case errors.Is(err, qr.ErrNoCode):
		return "use a sharper, larger or better-lit image with the whole code in it"
	case strings.Contains(err.Error(), "not a PNG, JPEG or GIF"):
		return "give a PNG, JPEG or GIF image"
	case errors.Is(err, posagent.ErrInvalidInput):
		return "the image is too large or unreadable: crop it around the code, or save it again as PNG"
	}
	return "check the file is an image that can be read"
}
