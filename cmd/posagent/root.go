package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"

	"github.com/posagent/posagent"
	"github.com/posagent/posagent/internal/buildinfo"
	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3"; without it the
// module version from the build info is used.
var version = ""

// Exit statuses, as the README gives them ("The qr commands").
const (
	exitOK     = 0
	exitFailed = 1 // the input was invalid or the operation failed
	exitUsage  = 2 // the command line itself was wrong
)

// Main is the posagent program with its standard streams, so tests run it in-process.
type Main struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// NewMain returns a Main on the given streams.
func NewMain(stdin io.Reader, stdout, stderr io.Writer) *Main {
	return &Main{Stdin: stdin, Stdout: stdout, Stderr: stderr}
}

// commands are the subcommands defined in files of their own (print.go, queue.go, …),
// each adding its constructor from an init function, so that a new command touches only
// its own file.
var commands []func(*Main) *cobra.Command

// usageError marks an error in the command line (exit status 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// hintError carries a suggestion for the operator, printed after the error on one line.
type hintError struct {
	err  error
	hint string
}

func (e hintError) Error() string { return e.err.Error() }
func (e hintError) Unwrap() error { return e.err }

// withHint attaches an operator hint to err.
func withHint(err error, hint string) error {
	if err == nil {
		return nil
	}
	return hintError{err, hint}
}

// Run executes the command line and returns the exit status. Errors are printed as one line
// on stderr: "posagent: what went wrong (hint: what to do)".
func (m *Main) Run(ctx context.Context, args []string) int {
	root := m.rootCommand()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	status := exitFailed
	var ue usageError
	if errors.As(err, &ue) || isCobraUsage(err) {
		status = exitUsage
		if !errors.As(err, new(hintError)) {
			err = withHint(err, "see 'posagent help'")
		}
	}
	msg := oneLine(err.Error())
	var he hintError
	if errors.As(err, &he) && he.hint != "" {
		msg += " (hint: " + he.hint + ")"
	}
	fmt.Fprintln(m.Stderr, "posagent: "+msg)
	return status
}

// isCobraUsage recognises cobra's own command-line errors, which are not typed.
func isCobraUsage(err error) bool {
	s := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand", "flag needs an argument",
		"invalid argument", "accepts ", "requires at least", "required flag"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// oneLine folds a message onto one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}

func (m *Main) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "posagent",
		Short: "The agent on a POS terminal: QR codes, peripherals, offline journal, acquirer sync",
		Long: `posagent runs on the payment terminal at the checkout counter. It reads and shows
payment QR codes (EMVCo merchant- and consumer-presented, WeChat Pay, Alipay, UnionPay,
e-CNY), drives the scanner, receipt printer and customer display, keeps an offline
journal of sales and syncs it to the acquirer.

Start with:
  posagent qr classify 134567890123456789     what is this scanned code?
  posagent qr parse 00020101021229...          decode an EMV QR payload as JSON
  posagent qr mpm --name SHOP --city BEIJING --country CN --mcc 5411 --currency 156 \
      --account 26=D15600000000 --amount 12.50 --png code.png
  posagent qr decode photo.jpg                 read a QR code from an image

Exit status: 0 success, 1 invalid input or failed operation, 2 usage error.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return cmd.Help()
		},
	}
	root.Version = Version()
	root.SetVersionTemplate(fmt.Sprintf("posagent %s (%s %s/%s)\n", Version(), runtime.Version(), runtime.GOOS, runtime.GOARCH))
	root.SetIn(m.Stdin)
	root.SetOut(m.Stdout)
	root.SetErr(m.Stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.CompletionOptions.DisableDefaultCmd = true
	root.AddCommand(m.versionCommand(), m.qrCommand())
	for _, c := range commands {
		root.AddCommand(c(m))
	}
	return root
}

func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError{fmt.Errorf("unknown command %q for %q", args[0], cmd.CommandPath())}
	}
	return nil
}

// exactArgs is cobra.ExactArgs with a usage error and a message naming what is expected.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError{fmt.Errorf("%s takes %s, got %d argument(s)", cmd.CommandPath(), what, len(args))}
		}
		return nil
	}
}

func (m *Main) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of posagent",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := fmt.Fprintf(m.Stdout, "posagent %s (%s %s/%s)\n", Version(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return err
		},
	}
}

// Version is the build's version (see buildinfo.Version).
func Version() string { return buildinfo.Version(version) }

// invalid wraps an error in the input given on the command line.
func invalid(err error) error {
	if errors.Is(err, posagent.ErrInvalidInput) {
		return err
	}
	return &inputError{err}
}

// inputError marks err as invalid input (exit status 1) without changing its message.
type inputError struct{ err error }

func (e *inputError) Error() string   { return e.err.Error() }
func (e *inputError) Unwrap() []error { return []error{e.err, posagent.ErrInvalidInput} }
