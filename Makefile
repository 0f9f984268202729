# Dev tasks in one place. `make test` is what CI runs (via .ci/run).
CARGO ?= cargo

.PHONY: all build check unit test e2e bench soak fuzz fmt clean-demo

all: check unit

build:
	$(CARGO) build --release --locked

## Formatting and lints, as CI enforces them.
check:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

## Unit and integration tests (no servers started).
unit:
	$(CARGO) test --locked

## The end-to-end scenario against real PostgreSQL and pgBackRest: 15 + 2.45
## (this machine), then 17 + 2.55.1 in a cached debootstrapped Debian 13 root,
## then 15 + 2.45 with each cell on a test host of its own, deployed over SSH.
e2e:
	$(CARGO) build --locked --bin pgbr --bin pgbr-agent --example testhosts
	tests/e2e/run.sh
	tests/e2e/run.sh --trixie
	tests/e2e/run.sh --hosts

## Everything CI runs: lints, unit/integration tests, end-to-end.
test: check unit e2e

## Benchmarks (report: docs/benchmarks.md).
bench:
	$(CARGO) bench --locked --bench pgbr_bench
	$(CARGO) bench --locked --bench remote
	$(CARGO) bench --locked --bench parallel

## Crash soak: 200 random SIGKILLs of a 16-cell apply, plus every
## failpoint (report: docs/soak.md). PGBR_SOAK_SEED=<n> replays a run.
PGBR_SOAK_TRIALS ?= 200
soak:
	PGBR_SOAK_TRIALS=$(PGBR_SOAK_TRIALS) $(CARGO) test --release --locked --test it crash -- --nocapture --test-threads 1

## Topology fuzzing (proptest) for a long run (docs/security.md):
## PROPTEST_CASES cases per property.
PROPTEST_CASES ?= 200000
fuzz:
	PROPTEST_CASES=$(PROPTEST_CASES) $(CARGO) test --release --locked --test it fuzz -- --nocapture

fmt:
	$(CARGO) fmt --all
