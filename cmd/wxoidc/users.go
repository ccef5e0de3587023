package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/wxoidc/wxoidc/provider/admin"
)

func newUsersCommand(getenv func(string) string, stdout io.Writer) *cobra.Command {
	af := &adminFlags{getenv: getenv}
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "users",
		Short: "Find, create, change, disable and erase users (SPEC §10), in the configured storage or through the admin API with --admin",
	}
	af.register(cmd)
	cmd.PersistentFlags().BoolVar(&asJSON, "json", false, "print JSON (for scripts) instead of a table")

	show := func(u admin.User) error {
		if asJSON {
			return printJSON(stdout, u)
		}
		return printUser(stdout, u)
	}

	var lq struct {
		phone, openid, unionid, externalID, q, pageToken string
		limit                                            int
		all                                              bool
	}
	list := &cobra.Command{
		Use: "list", Short: "Search users (all filters given must match); pages with --page-token, or --all", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return af.run(c.Context(), func(a *adminClient) error {
				v := url.Values{}
				for k, s := range map[string]string{"phone_number": lq.phone, "openid": lq.openid, "unionid": lq.unionid, "external_id": lq.externalID, "q": lq.q} {
					if s != "" {
						v.Set(k, s)
					}
				}
				if lq.limit > 0 {
					v.Set("limit", strconv.Itoa(lq.limit))
				}
				tok := lq.pageToken
				var all admin.UserList
				for {
					if tok != "" {
						v.Set("page_token", tok)
					}
					var page admin.UserList
					if err := a.call(c.Context(), http.MethodGet, "/admin/users?"+v.Encode(), nil, &page); err != nil {
						return fmt.Errorf("list users: %w", err)
					}
					all.Users = append(all.Users, page.Users...)
					all.NextPageToken = page.NextPageToken
					if !lq.all || page.NextPageToken == "" {
						break
					}
					tok = page.NextPageToken
				}
				if all.Users == nil {
					all.Users = []admin.User{}
				}
				if asJSON {
					return printJSON(stdout, all)
				}
				return printUsers(stdout, all)
			})
		},
	}
	lf := list.Flags()
	lf.StringVar(&lq.phone, "phone", "", "phone number, E.164 (+8613800138000)")
	lf.StringVar(&lq.openid, "openid", "", "WeChat openid (of any app)")
	lf.StringVar(&lq.unionid, "unionid", "", "WeChat unionid")
	lf.StringVar(&lq.externalID, "external-id", "", "your own id of the person")
	lf.StringVar(&lq.q, "q", "", "name or sub prefix")
	lf.IntVar(&lq.limit, "limit", 0, "users per page (1-1000, default 50)")
	lf.StringVar(&lq.pageToken, "page-token", "", "continue from a page's next_page_token")
	lf.BoolVar(&lq.all, "all", false, "fetch every page")

	get := &cobra.Command{
		Use: "get SUB", Short: "Show a user with identities, consents and sessions", Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return af.run(c.Context(), func(a *adminClient) error {
				var u admin.User
				if err := a.call(c.Context(), http.MethodGet, "/admin/users/"+url.PathEscape(args[0]), nil, &u); err != nil {
					return fmt.Errorf("user %s: %w", args[0], err)
				}
				return show(u)
			})
		},
	}

	fieldFlags := func(c *cobra.Command) map[string]any {
		fs := c.Flags()
		m := map[string]any{}
		for flag, field := range map[string]string{"name": "name", "picture": "picture", "phone": "phone_number", "external-id": "external_id"} {
			if fs.Changed(flag) {
				s, _ := fs.GetString(flag)
				if s == "" {
					m[field] = nil // merge patch: clear
				} else {
					m[field] = s
				}
			}
		}
		if fs.Changed("role") {
			roles, _ := fs.GetStringSlice("role")
			m["roles"] = roles
		}
		return m
	}
	addFieldFlags := func(c *cobra.Command) {
		fs := c.Flags()
		fs.String("name", "", "name")
		fs.String("picture", "", "picture URL")
		fs.String("phone", "", "phone number, E.164 (+8613800138000); \"\" clears it")
		fs.String("external-id", "", "your own id of the person (unique); \"\" clears it")
		fs.StringSlice("role", nil, "console role: admin or viewer (repeat; --role= clears)")
	}
	create := &cobra.Command{
		Use: "create", Short: "Pre-provision a user (for users.registration: existing); prints the new user", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return af.run(c.Context(), func(a *adminClient) error {
				var u admin.User
				if err := a.call(c.Context(), http.MethodPost, "/admin/users", fieldFlags(c), &u); err != nil {
					return fmt.Errorf("create user: %w", err)
				}
				return show(u)
			})
		},
	}
	addFieldFlags(create)
	patch := func(c *cobra.Command, sub string, m map[string]any) error {
		return af.run(c.Context(), func(a *adminClient) error {
			var u admin.User
			if err := a.callType(c.Context(), http.MethodPatch, "/admin/users/"+url.PathEscape(sub), "application/merge-patch+json", m, &u); err != nil {
				return fmt.Errorf("update user %s: %w", sub, err)
			}
			return show(u)
		})
	}
	update := &cobra.Command{
		Use: "update SUB", Short: "Change a user's fields (only the flags given)", Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			m := fieldFlags(c)
			if len(m) == 0 {
				return fmt.Errorf("update user %s: nothing to change: give --name, --picture, --phone, --external-id or --role", args[0])
			}
			return patch(c, args[0], m)
		},
	}
	addFieldFlags(update)
	disable := &cobra.Command{
		Use: "disable SUB", Short: "Disable a user: no new tokens, sessions and tokens end at once", Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return patch(c, args[0], map[string]any{"disabled": true})
		},
	}
	enable := &cobra.Command{
		Use: "enable SUB", Short: "Enable a disabled user", Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return patch(c, args[0], map[string]any{"disabled": false})
		},
	}
	simple := func(use, short, done string, path func(args []string) string) *cobra.Command {
		n := strings.Count(use, " ")
		return &cobra.Command{
			Use: use, Short: short, Args: cobra.ExactArgs(n),
			RunE: func(c *cobra.Command, args []string) error {
				return af.run(c.Context(), func(a *adminClient) error {
					if err := a.call(c.Context(), http.MethodDelete, path(args), nil, nil); err != nil {
						return fmt.Errorf("%s: %w", strings.Join(append([]string{strings.Fields(use)[0]}, args...), " "), err)
					}
					fmt.Fprintf(stdout, done+"\n", strings.Join(args, " "))
					return nil
				})
			},
		}
	}
	del := simple("delete SUB", "Erase a user and everything that names them (irreversible); the sub is never reused", "erased %s",
		func(a []string) string { return "/admin/users/" + url.PathEscape(a[0]) })
	unlink := simple("unlink SUB APPID", "Unlink the user's WeChat identity of an app", "unlinked %s",
		func(a []string) string {
			return "/admin/users/" + url.PathEscape(a[0]) + "/identities/" + url.PathEscape(a[1])
		})
	signout := simple("signout SUB", "Sign a user out everywhere: browser sessions end, tokens are revoked", "signed out %s",
		func(a []string) string { return "/admin/users/" + url.PathEscape(a[0]) + "/sessions" })
	cmd.AddCommand(list, get, create, update, disable, enable, del, unlink, signout)
	return cmd
}

func newEventsCommand(getenv func(string) string, stdout io.Writer) *cobra.Command {
	af := &adminFlags{getenv: getenv}
	var (
		asJSON                                bool
		sub, clientID, typ, since, until, tok string
		limit                                 int
	)
	cmd := &cobra.Command{
		Use:   "events",
		Short: "List the audit trail, newest first, from the configured storage or through the admin API with --admin",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return af.run(c.Context(), func(a *adminClient) error {
				v := url.Values{}
				for k, s := range map[string]string{"sub": sub, "client_id": clientID, "type": typ, "since": since, "until": until, "page_token": tok} {
					if s != "" {
						v.Set(k, s)
					}
				}
				if limit > 0 {
					v.Set("limit", strconv.Itoa(limit))
				}
				var out admin.EventList
				if err := a.call(c.Context(), http.MethodGet, "/admin/events?"+v.Encode(), nil, &out); err != nil {
					return fmt.Errorf("list events: %w", err)
				}
				if out.Events == nil {
					out.Events = []admin.Event{}
				}
				if asJSON {
					return printJSON(stdout, out)
				}
				return printEvents(stdout, out)
			})
		},
	}
	af.register(cmd)
	fs := cmd.Flags()
	fs.BoolVar(&asJSON, "json", false, "print JSON (for scripts) instead of a table")
	fs.StringVar(&sub, "sub", "", "events of this user")
	fs.StringVar(&clientID, "client-id", "", "events of this client")
	fs.StringVar(&typ, "type", "", "events of this type (login, user_disabled, …)")
	fs.StringVar(&since, "since", "", "from this time on (RFC 3339, e.g. 2026-12-01T00:00:00Z)")
	fs.StringVar(&until, "until", "", "before this time (RFC 3339)")
	fs.IntVar(&limit, "limit", 0, "events per page (1-1000, default 50)")
	fs.StringVar(&tok, "page-token", "", "continue from a page's next_page_token")
	return cmd
}

func fmtTime(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func printUsers(w io.Writer, l admin.UserList) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SUB\tNAME\tPHONE\tEXTERNAL ID\tROLES\tSTATUS\tLAST LOGIN\tIDENTITIES")
	for _, u := range l.Users {
		status := "enabled"
		if u.Disabled {
			status = "disabled"
		}
		var ids []string
		for _, id := range u.Identities {
			ids = append(ids, id.AppID)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", u.Sub, dash(u.Name), dash(u.PhoneNumber), dash(u.ExternalID),
			dash(strings.Join(u.Roles, ",")), status, fmtTime(u.LastLoginAt), dash(strings.Join(ids, ",")))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if l.NextPageToken != "" {
		fmt.Fprintf(w, "\nmore: --page-token %s (or --all)\n", l.NextPageToken)
	}
	return nil
}

func printUser(w io.Writer, u admin.User) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	verified := ""
	if u.PhoneNumber != "" && u.PhoneNumberVerified {
		verified = " (verified)"
	}
	status := "enabled"
	if u.Disabled {
		status = "disabled"
	}
	created := u.CreatedAt
	for _, kv := range [][2]string{
		{"sub", u.Sub}, {"name", dash(u.Name)}, {"picture", dash(u.Picture)}, {"phone_number", dash(u.PhoneNumber) + verified},
		{"external_id", dash(u.ExternalID)}, {"roles", dash(strings.Join(u.Roles, ","))}, {"status", status},
		{"created_at", fmtTime(&created)}, {"last_login_at", fmtTime(u.LastLoginAt)},
	} {
		fmt.Fprintf(tw, "%s\t%s\n", kv[0], kv[1])
	}
	for _, id := range u.Identities {
		fmt.Fprintf(tw, "identity\t%s (%s) openid %s unionid %s, last login %s\n", id.AppID, dash(id.Kind), id.OpenID, dash(id.UnionID), fmtTime(id.LastLoginAt))
	}
	for _, c := range u.Consents {
		granted := c.GrantedAt
		fmt.Fprintf(tw, "consent\t%s: %s (%s)\n", c.ClientID, c.Scope, fmtTime(&granted))
	}
	for _, s := range u.Sessions {
		auth, exp := s.AuthTime, s.ExpiresAt
		fmt.Fprintf(tw, "session\tsigned in %s, until %s\n", fmtTime(&auth), fmtTime(&exp))
	}
	return tw.Flush()
}

func printEvents(w io.Writer, l admin.EventList) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tTYPE\tSUB\tCLIENT\tIP\tDETAILS")
	for _, e := range l.Events {
		t := e.Time
		var details []string
		for k, v := range e.Details {
			details = append(details, fmt.Sprintf("%s=%v", k, v))
		}
		slices.Sort(details)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", fmtTime(&t), e.Type, dash(e.Sub), dash(e.ClientID), dash(e.IP), strings.Join(details, " "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if l.NextPageToken != "" {
		fmt.Fprintf(w, "\nmore: --page-token %s\n", l.NextPageToken)
	}
	return nil
}
