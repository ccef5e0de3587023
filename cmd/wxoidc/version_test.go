package main

import (
	"bytes"
	"encoding/json"
	"runtime/debug"
	"strings"
	"testing"
)

func TestDescribeBuild(t *testing.T) {
	vcs := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "github.com/wxoidc/wxoidc", Version: "v0.0.0-20261202141856-6f2e8374b03c+dirty"},
		Settings: []debug.BuildSetting{
			{Key: "-trimpath", Value: "true"},
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "6f2e8374b03c1ea6ce364ff0413b752720b73091"},
			{Key: "vcs.time", Value: "2026-12-02T14:18:56Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	noVCS := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/wxoidc/wxoidc", Version: "(devel)"}}
	tests := []struct {
		name           string
		linked         build
		linkedModified string
		bi             *debug.BuildInfo
		want           build
	}{
		{
			name: "build info only",
			bi:   vcs,
			want: build{Version: "v0.0.0-20261202141856-6f2e8374b03c+dirty", Revision: "6f2e8374b03c1ea6ce364ff0413b752720b73091", Time: "2026-12-02T14:18:56Z", Modified: true, Go: "go1.26.8"},
		},
		{
			name:   "link-time version wins over the module version",
			linked: build{Version: "v0.4.0"},
			bi:     vcs,
			want:   build{Version: "v0.4.0", Revision: "6f2e8374b03c1ea6ce364ff0413b752720b73091", Time: "2026-12-02T14:18:56Z", Modified: true, Go: "go1.26.8"},
		},
		{
			name:           "link-time commit fills in for a build without vcs stamps",
			linked:         build{Version: "v0.4.0", Revision: "abc123", Time: "2026-12-01T00:00:00Z"},
			linkedModified: "false",
			bi:             noVCS,
			want:           build{Version: "v0.4.0", Revision: "abc123", Time: "2026-12-01T00:00:00Z", Go: "go1.26.8"},
		},
		{
			name:           "link-time modified wins",
			linkedModified: "false",
			bi:             vcs,
			want:           build{Version: "v0.0.0-20261202141856-6f2e8374b03c+dirty", Revision: "6f2e8374b03c1ea6ce364ff0413b752720b73091", Time: "2026-12-02T14:18:56Z", Go: "go1.26.8"},
		},
		{name: "(devel) is devel", bi: noVCS, want: build{Version: "devel", Go: "go1.26.8"}},
		{name: "no build info", want: build{Version: "devel"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := describeBuild(tc.linked, tc.linkedModified, tc.bi)
			if tc.want.Go == "" {
				tc.want.Go = got.Go // runtime.Version() of the test binary
			}
			tc.want.Platform = got.Platform
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			if got.Platform == "" || !strings.Contains(got.Platform, "/") {
				t.Errorf("got platform %q, want GOOS/GOARCH", got.Platform)
			}
		})
	}
}

func TestVersionCommand(t *testing.T) {
	var out bytes.Buffer
	if err := run(t.Context(), []string{"version", "--json"}, func(string) string { return "" }, &out, &out); err != nil {
		t.Fatal(err)
	}
	var b build
	if err := json.Unmarshal(out.Bytes(), &b); err != nil {
		t.Fatalf("version --json: %v in %q", err, out.String())
	}
	if want := currentBuild(); b != want {
		t.Errorf("version --json: got %+v, want %+v", b, want)
	}

	out.Reset()
	if err := run(t.Context(), []string{"version"}, func(string) string { return "" }, &out, &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 4 || lines[0] != "wxoidc "+b.Version || !strings.HasPrefix(lines[3], "go ") {
		t.Errorf("version: got %q", out.String())
	}

	out.Reset()
	if err := run(t.Context(), []string{"--version"}, func(string) string { return "" }, &out, &out); err != nil {
		t.Fatal(err)
	}
	if got, want := out.String(), "wxoidc "+b.Version+"\n"; got != want {
		t.Errorf("--version: got %q, want %q", got, want)
	}
}
