package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/vrsky/vrsky/client"
)

// group is a command whose subcommands call the REST API through the
// generated client: `vrsky tenants list`, `vrsky secrets put NAME`… (see
// docs/adr/0021-cli.md).
type group struct {
	name    string
	summary string // what the group manages, for its usage text
	// admin: the subcommands call with the platform admin key (--key, or
	// a dev stack's); otherwise with the tenant's key, as vrsky apply.
	admin bool
	subs  []subcommand
}

// subcommand is one subcommand of a group.
type subcommand struct {
	name    string
	args    []string // names of its positional arguments, all required
	summary string
	// flags registers the subcommand's own flags and returns what runs it.
	flags func(fs *flag.FlagSet) func(ctx context.Context, c call) error
}

// call is what a subcommand runs with.
type call struct {
	api    *client.API
	args   []string // the positional arguments, as many as subcommand.args
	out    output
	stdin  io.Reader
	tenant string
}

// usage is the group's usage text.
func (g group) usage() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Usage: vrsky %s COMMAND [ARGS] [flags]\n\n%s\n\n", g.name, g.summary)
	for _, s := range g.subs {
		fmt.Fprintf(&b, "  %-28s %s\n", strings.TrimSpace(s.name+" "+strings.Join(s.args, " ")), s.summary)
	}
	if g.admin {
		b.WriteString("\nThey call the API with the platform admin key: --key (VRSKY_API_KEY) or a\nrunning vrsky dev's (--data-dir). --api picks the API. --json prints the API's JSON.\n")
	} else {
		b.WriteString("\n--tenant, --data-dir, --api and --key pick the API and the key as for\nvrsky apply. --json prints the API's JSON.\n")
	}
	b.WriteString("Run \"vrsky " + g.name + " COMMAND -h\" for a command's flags.\n")
	return b.String()
}

// run runs the subcommand args name.
func (g group) run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, g.usage())
		return fmt.Errorf("%w: vrsky %s COMMAND", errUsage, g.name)
	}
	if isHelpArg(args[0]) || args[0] == "help" {
		fmt.Fprint(stdout, g.usage())
		return nil
	}
	i := slices.IndexFunc(g.subs, func(s subcommand) bool { return s.name == args[0] })
	if i < 0 {
		fmt.Fprint(stderr, g.usage())
		return fmt.Errorf("%w: unknown %s command %q", errUsage, g.name, args[0])
	}
	sub := g.subs[i]
	fs := flag.NewFlagSet(g.name+" "+sub.name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: vrsky %s %s [flags]\n\n%s\n\nFlags:\n", g.name, strings.TrimSpace(sub.name+" "+strings.Join(sub.args, " ")), sub.summary)
		fs.PrintDefaults()
	}
	target := addTenantFlags(fs)
	asJSON := fs.Bool("json", false, "print the API's JSON")
	timeout := fs.Duration("timeout", 60*time.Second, "how long the command may take")
	runSub := sub.flags(fs)
	positional, err := parseInterleaved(fs, args[1:])
	if err != nil {
		return err
	}
	if len(positional) != len(sub.args) {
		fs.Usage()
		return fmt.Errorf("%w: vrsky %s %s takes %d argument(s) (%s), got %d", errUsage, g.name, sub.name,
			len(sub.args), strings.Join(sub.args, " "), len(positional))
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	var api *client.API
	if g.admin {
		api, err = target.adminClient()
	} else {
		api, err = target.client(ctx)
	}
	if err != nil {
		return err
	}
	return runSub(ctx, call{api: api, args: positional, out: output{w: stdout, asJSON: *asJSON}, stdin: stdin, tenant: target.tenant})
}

// parseInterleaved parses args, whose positional arguments may come before,
// between or after the flags, and returns the positional ones.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, fmt.Errorf("%w: %w", errUsage, err)
		}
		if fs.NArg() == 0 {
			return positional, nil
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// output prints an answer of the API: its JSON indented, or readably.
type output = integrationsOutput

// isHelpArg reports whether arg asks for help.
func isHelpArg(arg string) bool { return arg == "-h" || arg == "-help" || arg == "--help" }

// helpRequested reports whether args ask for help before any "--".
func helpRequested(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if isHelpArg(a) {
			return true
		}
	}
	return false
}

// isHelp reports whether err is a command's answer to -h: flag.ErrHelp,
// which the commands return wrapped as a usage error (some format it with
// %v, hence the message check).
func isHelp(err error) bool {
	return errors.Is(err, flag.ErrHelp) ||
		(errors.Is(err, errUsage) && strings.HasSuffix(err.Error(), flag.ErrHelp.Error()))
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// whenPtr is when(*t), or "-" for nil.
func whenPtr(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return when(*t)
}
