package main

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = "devel"

func newRootCommand(getenv func(string) string, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "wxoidc",
		Short:         "An OpenID Connect provider for WeChat sign-in",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
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

func newVersionCommand(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print version and build information",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			info := map[string]string{"version": version}
			if bi, ok := debug.ReadBuildInfo(); ok {
				info["go"] = bi.GoVersion
				for _, s := range bi.Settings {
					switch s.Key {
					case "vcs.revision", "vcs.time", "vcs.modified":
						info[s.Key] = s.Value
					}
				}
			}
			fmt.Fprintf(stdout, "wxoidc %s\n", info["version"])
			b, _ := json.MarshalIndent(info, "", "  ")
			fmt.Fprintln(stdout, string(b))
			return nil
		},
	}
}
