package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestDeployExamples checks the container examples of docs/deploy.md as far
// as they can be checked without Docker or Kubernetes: the files parse, the
// configuration they carry is valid with the environment they give it, and
// they do what the page says (replicas, migrate first, probes, secrets,
// non-root, read-only root).
func TestDeployExamples(t *testing.T) {
	const dir = "../../docs/deploy/"
	read := func(name string) []byte {
		t.Helper()
		b, err := os.ReadFile(dir + name)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	configFile := read("wxoidc.yaml")

	t.Run("deploy.md shows deploy/wxoidc.yaml", func(t *testing.T) {
		md, err := os.ReadFile("../../docs/deploy.md")
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile("(?s)<!-- file: deploy/wxoidc.yaml -->\n```yaml\n(.*?)```").FindSubmatch(md)
		if m == nil || !bytes.Equal(m[1], configFile) {
			t.Error("docs/deploy.md's configuration block differs from docs/deploy/wxoidc.yaml")
		}
	})

	t.Run("compose", func(t *testing.T) {
		var c struct {
			Services map[string]struct {
				Image       string            `yaml:"image"`
				ReadOnly    bool              `yaml:"read_only"`
				User        string            `yaml:"user"`
				Entrypoint  []string          `yaml:"entrypoint"`
				Command     []string          `yaml:"command"`
				Environment map[string]string `yaml:"environment"`
				Volumes     []string          `yaml:"volumes"`
				DependsOn   map[string]struct {
					Condition string `yaml:"condition"`
				} `yaml:"depends_on"`
			} `yaml:"services"`
		}
		if err := yaml.Unmarshal(read("compose.yaml"), &c); err != nil {
			t.Fatal(err)
		}
		if c.Services["postgres"].Image == "" || c.Services["caddy"].Image == "" {
			t.Error("compose.yaml: want a postgres and a caddy service")
		}
		if got := c.Services["migrate"]; strings.Join(got.Entrypoint, " ") != "/usr/local/bin/wxoidc migrate" ||
			got.DependsOn["postgres"].Condition != "service_healthy" {
			t.Errorf("compose.yaml: migrate service: got %+v", got)
		}
		for _, name := range []string{"wxoidc-1", "wxoidc-2"} {
			s, ok := c.Services[name]
			if !ok {
				t.Fatalf("compose.yaml: no service %s", name)
			}
			if !s.ReadOnly || s.User != "65532:65532" {
				t.Errorf("%s: want read_only and user 65532, got %v %q", name, s.ReadOnly, s.User)
			}
			if s.DependsOn["migrate"].Condition != "service_completed_successfully" {
				t.Errorf("%s: does not wait for the migrate step", name)
			}
			if !strings.Contains(strings.Join(s.Volumes, " "), "./wxoidc.yaml:/etc/wxoidc/wxoidc.yaml:ro") {
				t.Errorf("%s: does not mount wxoidc.yaml", name)
			}
			env := map[string]string{}
			for k, v := range s.Environment {
				// ${VAR:?message} is compose's required variable; give it a value.
				env[k] = regexp.MustCompile(`\$\{[A-Z_]+:\?[^}]*\}`).ReplaceAllString(v, "0123456789abcdef0123456789abcdef-"+k)
			}
			if env["WXOIDC_SECRET"] == "" || !strings.HasPrefix(env["WXOIDC_STORAGE_DSN"], "postgres://") {
				t.Errorf("%s: want WXOIDC_SECRET and a postgres WXOIDC_STORAGE_DSN in the environment", name)
			}
			validateDeployConfig(t, configFile, env)
		}
	})

	t.Run("kubernetes", func(t *testing.T) {
		dec := yaml.NewDecoder(bytes.NewReader(read("kubernetes.yaml")))
		docs := map[string]map[string]any{}
		for {
			var d map[string]any
			err := dec.Decode(&d)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			docs[d["kind"].(string)] = d
		}
		for _, kind := range []string{"Secret", "ConfigMap", "Deployment", "Service", "PodDisruptionBudget", "Ingress"} {
			if docs[kind] == nil {
				t.Errorf("kubernetes.yaml: no %s", kind)
			}
		}
		if t.Failed() {
			return
		}
		env := map[string]string{}
		for k, v := range dig(docs["Secret"], "stringData").(map[string]any) {
			env[k] = v.(string)
		}
		if env["WXOIDC_SECRET"] == "" {
			t.Error("kubernetes.yaml: the Secret has no WXOIDC_SECRET")
		}
		pod := dig(docs["Deployment"], "spec", "template", "spec").(map[string]any)
		if dig(docs["Deployment"], "spec", "replicas") != 2 || dig(pod, "securityContext", "runAsNonRoot") != true {
			t.Error("kubernetes.yaml: want 2 replicas running as non-root")
		}
		inits := pod["initContainers"].([]any)
		if len(inits) != 1 || !strings.Contains(strings.Join(strs(dig(inits[0], "command")), " "), "wxoidc migrate") {
			t.Errorf("kubernetes.yaml: want an init container running wxoidc migrate, got %v", inits)
		}
		c := pod["containers"].([]any)[0]
		for _, x := range append(inits, c) {
			if dig(x, "securityContext", "readOnlyRootFilesystem") != true || dig(x, "envFrom", 0, "secretRef", "name") != "wxoidc" {
				t.Errorf("kubernetes.yaml: container %v: want a read-only root and the wxoidc Secret", dig(x, "name"))
			}
		}
		if dig(c, "ports", 0, "name") != "http" || dig(c, "ports", 0, "containerPort") != 8080 {
			t.Errorf("kubernetes.yaml: want the container port http = 8080, got %v", c.(map[string]any)["ports"])
		}
		for probe, path := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz"} {
			if dig(c, probe, "httpGet", "path") != path || dig(c, probe, "httpGet", "port") != "http" {
				t.Errorf("kubernetes.yaml: %s: want GET %s on port http, got %v", probe, path, dig(c, probe))
			}
		}
		for _, e := range dig(c, "env").([]any) {
			env[dig(e, "name").(string)] = dig(e, "value").(string)
		}
		validateDeployConfig(t, []byte(dig(docs["ConfigMap"], "data", "wxoidc.yaml").(string)), env)
	})
}

// validateDeployConfig loads config as `wxoidc serve --config` would, with
// env as the whole environment, and wants it valid.
func validateDeployConfig(t *testing.T, config []byte, env map[string]string) {
	t.Helper()
	path := t.TempDir() + "/wxoidc.yaml"
	if err := os.WriteFile(path, config, 0o600); err != nil {
		t.Fatal(err)
	}
	for k, v := range env { // secret_env is read from the process environment
		if strings.HasPrefix(k, "WECHAT_") {
			t.Setenv(k, v)
		}
	}
	cfg, err := loadConfig(path, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("invalid configuration with the example's environment:\n%v", err)
	}
}

// dig walks maps by key and lists by index; nil when a step is missing.
func dig(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			l, _ := v.([]any)
			if k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func strs(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}
