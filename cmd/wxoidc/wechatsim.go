package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/wxoidc/wxoidc/provider/wechat/wechattest"
)

func newWeChatSimCommand(stdout, stderr io.Writer) *cobra.Command {
	var (
		addr        string
		allowRemote bool
		autoConfirm string
		pushURL     string
	)
	cmd := &cobra.Command{
		Use:   "wechat-sim",
		Short: "Run the WeChat simulator alone (for tests of other stacks; never in production)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := newLogger(stderr, "text", "info")
			sim := wechattest.New(wechattest.Config{AutoConfirm: autoConfirm, Logger: log})
			if pushURL != "" {
				// The dev official account's pushes, plaintext, signed with
				// the dev push token (SPEC §9).
				if err := sim.SetPush(devOfficialAppID, wechattest.Push{URL: pushURL, Token: devPushToken}); err != nil {
					return err
				}
			}
			fmt.Fprintf(stdout, "WeChat simulator on http://%s (apps %s, %s, %s; POST /sim/login appid=…&user=…)\n",
				addr, devMiniProgramAppID, devWebsiteAppID, devOfficialAppID)
			return wechattest.ListenAndServe(cmd.Context(), addr, allowRemote, sim)
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:9090", "listen address (loopback only unless --allow-non-loopback)")
	cmd.Flags().BoolVar(&allowRemote, "allow-non-loopback", false, "allow a non-loopback address (the simulator hands out logins to anyone)")
	cmd.Flags().StringVar(&autoConfirm, "auto-confirm", "", "confirm login pages at once as this test user")
	cmd.Flags().StringVar(&pushURL, "push-url", "", "server URL the dev official account's events are pushed to (plaintext, token devpushtoken), e.g. http://127.0.0.1:8080/wechat/events/"+devOfficialAppID)
	return cmd
}
