package main

import (
	"io"

	"github.com/spf13/cobra"
)

func newRootCommand(getenv func(string) string, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "wxoidc",
		Short:         "An OpenID Connect provider for WeChat sign-in",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       currentBuild().Version,
	}
	root.SetVersionTemplate("wxoidc {{.Version}}\n")
	root.AddCommand(
		newServeCommand(getenv, stdout, stderr),
		newDevCommand(getenv, stdout, stderr),
		newWeChatSimCommand(stdout, stderr),
		newMigrateCommand(getenv, stdout),
		newClientsCommand(getenv, stdout),
		newUsersCommand(getenv, stdout),
		newEventsCommand(getenv, stdout),
		newKeysCommand(getenv, stdout),
		newVersionCommand(stdout),
	)
	return root
}
