package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/vrsky/vrsky/connectors"
	"github.com/vrsky/vrsky/connectors/sdk"
)

// connectorInfo is one line of `vrsky connectors list --json`.
type connectorInfo struct {
	Name    string          `json:"name"`
	Kind    sdk.Kind        `json:"kind"`
	Summary string          `json:"summary"`
	Schema  json.RawMessage `json:"schema"`
}

// runConnectors lists the connectors this binary knows.
func runConnectors(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && (isHelpArg(args[0]) || args[0] == "help") {
		fmt.Fprint(stdout, "Usage: vrsky connectors list [--json]\n\nLists the connectors this binary knows, with their config schemas.\n")
		return flag.ErrHelp
	}
	if len(args) == 0 || args[0] != "list" {
		return fmt.Errorf("%w: vrsky connectors list [--json]", errUsage)
	}
	fs := flag.NewFlagSet("connectors list", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print name, kind, summary and config JSON Schema as JSON")
	if err := fs.Parse(args[1:]); err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	all := connectors.Catalog().All()
	if !*asJSON {
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tKIND\tSUMMARY")
		for _, c := range all {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Name, c.Kind, c.Summary)
		}
		return tw.Flush()
	}
	out := make([]connectorInfo, 0, len(all))
	for _, c := range all {
		schema, err := sdk.ConfigSchema(c)
		if err != nil {
			return err
		}
		out = append(out, connectorInfo{Name: c.Name, Kind: c.Kind, Summary: c.Summary, Schema: schema})
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
