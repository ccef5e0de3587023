package main

import (
	"fmt"
	"io"
	"net/http"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func newKeysCommand(getenv func(string) string, stdout io.Writer) *cobra.Command {
	af := &adminFlags{getenv: getenv}
	cmd := &cobra.Command{Use: "keys", Short: "Inspect and rotate signing keys in the configured storage, or through the admin API with --admin"}
	af.register(cmd)

	list := &cobra.Command{
		Use: "list", Short: "List signing keys and their state", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return af.run(c.Context(), func(a *adminClient) error {
				var out keyList
				if err := a.call(c.Context(), http.MethodGet, "/admin/keys", nil, &out); err != nil {
					return fmt.Errorf("list keys: %w", err)
				}
				printKeys(stdout, out.Keys)
				return nil
			})
		},
	}
	rotate := &cobra.Command{
		Use:   "rotate [ALG...]",
		Short: "Create new signing keys; they are published at once and sign after the publish delay",
		RunE: func(c *cobra.Command, args []string) error {
			return af.run(c.Context(), func(a *adminClient) error {
				var out keyList
				if err := a.call(c.Context(), http.MethodPost, "/admin/keys/rotate", map[string][]string{"algorithms": args}, &out); err != nil {
					return fmt.Errorf("rotate keys: %w", err)
				}
				printKeys(stdout, out.Keys)
				return nil
			})
		},
	}
	cmd.AddCommand(list, rotate)
	return cmd
}

// keyList is the admin API's answer about signing keys.
type keyList struct {
	Keys []keyRow `json:"keys"`
}

// keyRow is one signing key in the admin API's answer.
type keyRow struct {
	KID         string    `json:"kid"`
	Algorithm   string    `json:"alg"`
	State       string    `json:"state"`
	CreatedAt   time.Time `json:"created_at"`
	ActivatesAt time.Time `json:"activates_at"`
	RetiredAt   time.Time `json:"retired_at"`
	ExpiresAt   time.Time `json:"expires_at"`
}

func printKeys(w io.Writer, rows []keyRow) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KID\tALG\tSTATE\tCREATED\tSIGNS FROM\tRETIRED\tUNPUBLISHED")
	for _, k := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.KID, k.Algorithm, k.State,
			stamp(k.CreatedAt), stamp(k.ActivatesAt), stamp(k.RetiredAt), stamp(k.ExpiresAt))
	}
	tw.Flush()
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
