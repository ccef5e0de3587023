# Shortcuts; .ci/run is the CI and .ci/release the release recipe.
.PHONY: build test ci release clean

VERSION ?=

build:
	go build -o wxoidc ./cmd/wxoidc

test:
	go vet ./...
	go test -race ./...

ci:
	.ci/run

# make release VERSION=v0.4.0  →  dist/v0.4.0/wxoidc-v0.4.0-{linux-amd64,linux-arm64,darwin-arm64,windows-amd64.exe}, SHA256SUMS
release:
	.ci/release $(VERSION)

clean:
	rm -rf wxoidc dist
