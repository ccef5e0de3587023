package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

func newMigrateCommand(getenv func(string) string, stdout io.Writer) *cobra.Command {
	var configPath string
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply the storage schema",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(configPath, getenv)
			if err != nil {
				return err
			}
			if _, err := backendOf(cfg.Storage.DSN); err != nil {
				return fmt.Errorf("storage.dsn: %w", err)
			}
			s, err := openStorage(cmd.Context(), cfg.Storage.DSN, true)
			if err != nil {
				return err
			}
			defer s.Close()
			fmt.Fprintf(stdout, "schema of %s is up to date\n", redactDSN(cfg.Storage.DSN))
			return nil
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "YAML configuration file")
	return cmd
}
