package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/wxoidc/wxoidc/keys"
)

func newKeysCommand(getenv func(string) string, stdout io.Writer) *cobra.Command {
	var configPath string
	cmd := &cobra.Command{Use: "keys", Short: "Inspect and rotate signing keys in the configured storage"}
	cmd.PersistentFlags().StringVar(&configPath, "config", "", "YAML configuration file")

	withManager := func(ctx context.Context, fn func(m *keys.Manager) error) error {
		cfg, err := loadConfig(configPath, getenv)
		if err != nil {
			return err
		}
		secret, err := cfg.secret()
		if err != nil {
			return err
		}
		s, err := openStorage(ctx, cfg.Storage.DSN, true)
		if err != nil {
			return err
		}
		defer s.Close()
		m, err := newKeyManager(cfg, s, secret, newLogger(io.Discard, "text", "error"))
		if err != nil {
			return err
		}
		return fn(m)
	}
	list := &cobra.Command{
		Use: "list", Short: "List signing keys and their state", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return withManager(c.Context(), func(m *keys.Manager) error {
				infos, err := m.List(c.Context())
				if err != nil {
					return err
				}
				printKeys(stdout, infos)
				return nil
			})
		},
	}
	rotate := &cobra.Command{
		Use:   "rotate [ALG...]",
		Short: "Create new signing keys; they are published at once and sign after the publish delay",
		RunE: func(c *cobra.Command, args []string) error {
			return withManager(c.Context(), func(m *keys.Manager) error {
				infos, err := m.Rotate(c.Context(), args...)
				if err != nil {
					return err
				}
				printKeys(stdout, infos)
				return nil
			})
		},
	}
	cmd.AddCommand(list, rotate)
	return cmd
}

func printKeys(w io.Writer, infos []keys.KeyInfo) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KID\tALG\tSTATE\tCREATED\tSIGNS FROM\tRETIRED\tUNPUBLISHED")
	for _, k := range infos {
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
