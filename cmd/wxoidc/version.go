package main

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Set at link time by the release recipe (.ci/release), these name
// the release and the commit it was built from; each one set wins over the
// build info:
//
//	go build -ldflags "-X main.version=v0.4.0" ./cmd/wxoidc
//
// Left empty, the version comes from the build info: the module version go
// stamps from the repository's tags (v0.4.0, or a pseudo-version such as
// v0.0.0-20261202141800-6f2e837a1b2c+dirty), or "devel" when there is none;
// the commit comes from the vcs.* settings. go stamps those only when it
// builds in a plain git checkout with -buildvcs (not in a linked worktree or
// an exported tree), hence the overrides for the commit too.
var (
	version    string
	revision   string
	commitTime string // RFC 3339
	modified   string // "true" or "false"
)

// build describes the running binary, as `wxoidc version` prints it.
type build struct {
	Version  string `json:"version"`
	Revision string `json:"revision,omitempty"` // vcs.revision: the commit built
	Time     string `json:"time,omitempty"`     // vcs.time: the commit's time (RFC 3339), not the build's
	Modified bool   `json:"modified"`           // vcs.modified: built from a work tree with uncommitted changes
	Go       string `json:"go"`
	Platform string `json:"platform"` // GOOS/GOARCH
}

// currentBuild reads the running binary's build information.
func currentBuild() build {
	bi, _ := debug.ReadBuildInfo()
	return describeBuild(build{Version: version, Revision: revision, Time: commitTime}, modified, bi)
}

// describeBuild completes the link-time values (linked, and linkedModified
// when not empty) from the build info, which may be nil.
func describeBuild(linked build, linkedModified string, bi *debug.BuildInfo) build {
	b := linked
	b.Go, b.Platform = runtime.Version(), runtime.GOOS+"/"+runtime.GOARCH
	if bi != nil {
		if bi.GoVersion != "" {
			b.Go = bi.GoVersion
		}
		if b.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			b.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch {
			case s.Key == "vcs.revision" && linked.Revision == "":
				b.Revision = s.Value
			case s.Key == "vcs.time" && linked.Time == "":
				b.Time = s.Value
			case s.Key == "vcs.modified" && linkedModified == "":
				b.Modified = s.Value == "true"
			}
		}
	}
	if linkedModified != "" {
		b.Modified = linkedModified == "true"
	}
	if b.Version == "" {
		b.Version = "devel"
	}
	return b
}

func newVersionCommand(stdout io.Writer) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, the commit it was built from and the Go toolchain",
		Long: `Print the version, the commit it was built from and the Go toolchain.

The version is the one the release set at link time, or else the module
version go derived from the repository (a tag or a pseudo-version), or
"devel". --json prints the same as one JSON object.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			b := currentBuild()
			if asJSON {
				return json.NewEncoder(stdout).Encode(b)
			}
			return writeBuild(stdout, b)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON object")
	return cmd
}

func writeBuild(w io.Writer, b build) error {
	revision := b.Revision
	if revision == "" {
		revision = "unknown"
	}
	if b.Modified {
		revision += " (modified)"
	}
	committed := b.Time
	if committed == "" {
		committed = "unknown"
	}
	_, err := fmt.Fprintf(w, "wxoidc %s\ncommit     %s\ncommitted  %s\ngo         %s %s\n",
		b.Version, revision, committed, b.Go, b.Platform)
	return err
}
