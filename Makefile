# authgate — one command per job. See README.md.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/authgate/target

.PHONY: test demo generate lint build image controlplane bench fuzz

## Everything CI runs: set-up, control plane, OP, browser, lint, all tests.
test:
	bash scripts/test.sh

## Local control plane + OP + controller + a gateway for examples/, then a URL to sign in at.
demo:
	bash scripts/demo.sh

## Regenerate crds/ and the chart's CRD templates from the Rust types.
generate:
	cargo run --quiet -- crd --out crds
	cargo run --quiet -- crd --chart-templates charts/authgate/templates/crds
	cargo run --quiet -- crd --reference > docs/reference.md

lint:
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings

build:
	cargo build --release

## The OCI image, offline and without a daemon (static binary, FROM scratch): target/image/authgate-oci.
image:
	bash scripts/image.sh

controlplane:
	bash tests/controlplane/cp.sh build

## Coverage-guided fuzzing (AFL++ via cargo-afl): each target for FUZZ_SECONDS.
FUZZ_SECONDS ?= 600
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) bash scripts/fuzz.sh run
