package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/vrsky/vrsky/client"
	"github.com/vrsky/vrsky/internal/spec"
)

// maxSecretBytes bounds a secret's value read from a file or standard input.
const maxSecretBytes = 64 << 10

// tenantsGroup is `vrsky tenants`: the platform admin's view of tenants.
var tenantsGroup = group{
	name:    "tenants",
	summary: "Create, list, inspect and delete tenants (the platform admin's commands).",
	admin:   true,
	subs: []subcommand{
		{name: "list", summary: "every tenant, with its status", flags: noFlags(func(ctx context.Context, c call) error {
			var all []client.Tenant
			var cursor *string
			for {
				r, err := c.api.ListTenantsWithResponse(ctx, &client.ListTenantsParams{Cursor: cursor, Limit: client.Ptr[int64](client.MaxPageSize)})
				if err := client.Check("list tenants", r, err, http.StatusOK); err != nil {
					return err
				}
				all = append(all, deref(r.JSON200.Items)...)
				if deref(r.JSON200.Next) == "" {
					break
				}
				cursor = r.JSON200.Next
			}
			return c.out.print(items(all), nil, func(w io.Writer) {
				if len(all) == 0 {
					fmt.Fprintln(w, "no tenants")
					return
				}
				tw := table(w)
				fmt.Fprintln(tw, "ID\tNAME\tSTATUS\tCREATED")
				for _, t := range all {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.Id, t.Name, t.Status, when(t.CreatedAt))
				}
				_ = tw.Flush()
			})
		})},
		{name: "get", args: []string{"ID"}, summary: "a tenant: status, egress policy and limits", flags: noFlags(func(ctx context.Context, c call) error {
			r, err := c.api.GetTenantWithResponse(ctx, c.args[0])
			if err := client.Check("get tenant "+c.args[0], r, err, http.StatusOK); err != nil {
				return err
			}
			return c.out.print(r.Body, nil, func(w io.Writer) { printTenant(w, *r.JSON200) })
		})},
		{name: "create", args: []string{"ID"}, summary: "create a tenant, wait for its provisioning and print its first API key",
			flags: func(fs *flag.FlagSet) func(context.Context, call) error {
				name := fs.String("name", "", "its display name; default: the ID")
				keyFile := fs.String("key-file", "", "also keep the key in this file (mode 0600), as vrsky apply does under DATA_DIR/keys/")
				return func(ctx context.Context, c call) error {
					id := c.args[0]
					if !spec.ValidName(id) {
						return fmt.Errorf("%w: invalid tenant ID %q", errUsage, id)
					}
					r, err := c.api.CreateTenantWithResponse(ctx, client.CreateTenantJSONRequestBody{Id: id, Name: orDefault(*name, id)})
					if err := client.Check("create tenant "+id, r, err, http.StatusAccepted); err != nil {
						return err
					}
					key := r.JSON202.ApiKey.Secret
					if *keyFile != "" {
						if err := os.MkdirAll(filepath.Dir(*keyFile), 0o700); err != nil {
							return err
						}
						if err := os.WriteFile(*keyFile, []byte(key+"\n"), 0o600); err != nil {
							return fmt.Errorf("keep the key: %w", err)
						}
					}
					if err := c.api.AwaitTenant(ctx, id); err != nil {
						return err
					}
					return c.out.print(r.Body, nil, func(w io.Writer) {
						fmt.Fprintf(w, "tenant %s: active\nAPI key (shown only now): %s\n", id, key)
					})
				}
			}},
		{name: "delete", args: []string{"ID"}, summary: "decommission a tenant: its integrations, streams, keys and secrets go",
			flags: noFlags(func(ctx context.Context, c call) error {
				r, err := c.api.DeleteTenantWithResponse(ctx, c.args[0])
				if err := client.Check("delete tenant "+c.args[0], r, err, http.StatusAccepted); err != nil {
					return err
				}
				return c.out.print(r.Body, nil, func(w io.Writer) { fmt.Fprintf(w, "deletion of tenant %s accepted\n", c.args[0]) })
			})},
	},
}

func printTenant(w io.Writer, t client.Tenant) {
	tw := table(w)
	fmt.Fprintf(tw, "id:\t%s\n", t.Id)
	fmt.Fprintf(tw, "name:\t%s\n", t.Name)
	fmt.Fprintf(tw, "status:\t%s\n", t.Status)
	if r := deref(t.FailureReason); r != "" {
		fmt.Fprintf(tw, "failure:\t%s\n", r)
	}
	egress := "public addresses only"
	if deref(t.Egress.AllowPrivate) {
		egress = "private addresses allowed"
	}
	if hosts := deref(t.Egress.AllowHosts); len(hosts) > 0 {
		egress += "; also " + strings.Join(hosts, ", ")
	}
	fmt.Fprintf(tw, "egress:\t%s\n", egress)
	if l := t.Limits; l != nil {
		fmt.Fprintf(tw, "limits:\t%d integrations, %d bytes on disk\n", l.Integrations, l.DiskBytes)
	}
	fmt.Fprintf(tw, "created:\t%s\n", when(t.CreatedAt))
	_ = tw.Flush()
}

// keysGroup is `vrsky keys`: the tenant's API keys.
var keysGroup = group{
	name:    "keys",
	summary: "List, create and revoke the tenant's API keys (needs a key with scope write or admin).",
	subs: []subcommand{
		{name: "list", summary: "the tenant's keys (their prefixes, never the keys)", flags: noFlags(func(ctx context.Context, c call) error {
			r, err := c.api.ListApiKeysWithResponse(ctx)
			if err := client.Check("list API keys", r, err, http.StatusOK); err != nil {
				return err
			}
			return c.out.print(r.Body, nil, func(w io.Writer) {
				tw := table(w)
				fmt.Fprintln(tw, "ID\tPREFIX\tSCOPES\tCREATED\tLAST USED\tREVOKED")
				for _, k := range deref(r.JSON200.Items) {
					var scopes []string
					for _, s := range deref(k.Scopes) {
						scopes = append(scopes, string(s))
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.Id, k.Prefix, strings.Join(scopes, ","), when(k.CreatedAt),
						whenPtr(k.LastUsedAt), whenPtr(k.RevokedAt))
				}
				_ = tw.Flush()
			})
		})},
		{name: "create", summary: "a new key; printed only now", flags: func(fs *flag.FlagSet) func(context.Context, call) error {
			scopes := fs.String("scopes", "read", "comma-separated: read, write, dlq, admin")
			return func(ctx context.Context, c call) error {
				var body client.CreateApiKeyJSONRequestBody
				for _, s := range splitList(*scopes) {
					sc := client.CreateAPIKeyInputBodyScopes(s)
					if !sc.Valid() {
						return fmt.Errorf("%w: --scopes: unknown scope %q (want read, write, dlq or admin)", errUsage, s)
					}
					body.Scopes = append(body.Scopes, sc)
				}
				if len(body.Scopes) == 0 {
					return fmt.Errorf("%w: --scopes: give at least one", errUsage)
				}
				r, err := c.api.CreateApiKeyWithResponse(ctx, body)
				if err := client.Check("create API key", r, err, http.StatusCreated); err != nil {
					return err
				}
				return c.out.print(r.Body, nil, func(w io.Writer) {
					fmt.Fprintf(w, "key %s (%s) created; the key, shown only now:\n%s\n", r.JSON201.Id, *scopes, r.JSON201.Secret)
				})
			}
		}},
		{name: "delete", args: []string{"ID"}, summary: "revoke a key at once", flags: noFlags(func(ctx context.Context, c call) error {
			r, err := c.api.DeleteApiKeyWithResponse(ctx, c.args[0])
			if err := client.Check("revoke API key "+c.args[0], r, err, http.StatusNoContent); err != nil {
				return err
			}
			fmt.Fprintf(c.out.w, "key %s revoked\n", c.args[0])
			return nil
		})},
	},
}

// secretsGroup is `vrsky secrets`: the tenant's secrets, which specs name
// as {secret: NAME}.
var secretsGroup = group{
	name:    "secrets",
	summary: "List, store and delete the tenant's secrets; a spec names one as {secret: NAME}. Values are never shown.",
	subs: []subcommand{
		{name: "list", summary: "the secrets' names and dates", flags: noFlags(func(ctx context.Context, c call) error {
			r, err := c.api.ListSecretsWithResponse(ctx)
			if err := client.Check("list secrets", r, err, http.StatusOK, http.StatusCreated); err != nil {
				return err
			}
			return c.out.print(r.Body, nil, func(w io.Writer) {
				list := deref(r.JSON200.Items)
				if len(list) == 0 {
					fmt.Fprintln(w, "no secrets")
					return
				}
				tw := table(w)
				fmt.Fprintln(tw, "NAME\tCREATED\tUPDATED")
				for _, s := range list {
					fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Name, when(s.CreatedAt), when(s.UpdatedAt))
				}
				_ = tw.Flush()
			})
		})},
		{name: "put", args: []string{"NAME"}, summary: "store a secret (create or replace)", flags: func(fs *flag.FlagSet) func(context.Context, call) error {
			fromFile := fs.String("from-file", "", "read the value from this file; - for standard input (the default)")
			value := fs.String("value", "", "the value itself (visible in the process list: prefer --from-file)")
			return func(ctx context.Context, c call) error {
				v, err := secretValue(*value, *fromFile, c.stdin)
				if err != nil {
					return err
				}
				r, err := c.api.PutSecretWithResponse(ctx, c.args[0], client.PutSecretJSONRequestBody{Value: v})
				if err := client.Check("store secret "+c.args[0], r, err, http.StatusOK, http.StatusCreated); err != nil {
					return err
				}
				return c.out.print(r.Body, nil, func(w io.Writer) { fmt.Fprintf(w, "secret %s stored\n", c.args[0]) })
			}
		}},
		{name: "delete", args: []string{"NAME"}, summary: "delete a secret", flags: noFlags(func(ctx context.Context, c call) error {
			r, err := c.api.DeleteSecretWithResponse(ctx, c.args[0])
			if err := client.Check("delete secret "+c.args[0], r, err, http.StatusNoContent); err != nil {
				return err
			}
			fmt.Fprintf(c.out.w, "secret %s deleted\n", c.args[0])
			return nil
		})},
	},
}

// secretValue is the value of vrsky secrets put: --value, or read from
// --from-file or standard input, without one trailing newline.
func secretValue(value, fromFile string, stdin io.Reader) (string, error) {
	if value != "" {
		if fromFile != "" {
			return "", fmt.Errorf("%w: give --value or --from-file, not both", errUsage)
		}
		return value, nil
	}
	r := stdin
	if fromFile != "" && fromFile != "-" {
		f, err := os.Open(filepath.Clean(fromFile))
		if err != nil {
			return "", fmt.Errorf("read secret: %w", err)
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, maxSecretBytes+1))
	if err != nil {
		return "", fmt.Errorf("read secret: %w", err)
	}
	if len(b) > maxSecretBytes {
		return "", fmt.Errorf("read secret: over %d bytes", maxSecretBytes)
	}
	v := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if v == "" {
		return "", errors.New("read secret: empty value")
	}
	return v, nil
}

// noFlags is a subcommand without flags of its own.
func noFlags(run func(ctx context.Context, c call) error) func(*flag.FlagSet) func(context.Context, call) error {
	return func(*flag.FlagSet) func(context.Context, call) error { return run }
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
