# The production image of keel: the binary on a distroless glibc base, non-root, no shell.
#
#   docker build -t keel:local .                     # from source (BuildKit; Docker >= 23 default)
#   make image                                        # the same, or the offline route below
#
# Two ways to get the binary into the same runtime stage:
# - `release` (the default, last stage): compiled here, dependencies cached by cargo-chef.
# - `prebuilt`: a binary built on the host, in a build context that holds only `keel`. `make
#   image` takes it where no registry can be pulled from, together with a RUNTIME_BASE built from
#   Debian packages (scripts/runtime-base-image.sh). It comes first so that even the classic
#   builder, which builds every stage up to --target, never needs the Rust image for it.

ARG RUNTIME_BASE=gcr.io/distroless/cc-debian12:nonroot
ARG RUST_IMAGE=rust:1.95-slim-bookworm

# ---- runtime: everything but the binary ----
# checkov:skip=CKV_DOCKER_7: the base is a build arg (checkov cannot expand it); its default names the distroless cc-debian12 nonroot tag, and the release workflow may pin a digest
FROM ${RUNTIME_BASE} AS runtime
ARG VERSION=0.0.0
ARG REVISION=unknown
ARG CREATED=1970-01-01T00:00:00Z
# Set by make image from the git remote, and by the release workflow.
ARG SOURCE=""
LABEL org.opencontainers.image.title="keel" \
      org.opencontainers.image.description="Keel: an OpenAPI-first HTTP service on PostgreSQL" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0"
# Every environment's defaults are compiled into the binary; production binds 0.0.0.0:8080 and
# logs JSON. The database URL and the signing key come from the environment (a Secret).
ENV APP_ENV=production
# The distroless `nonroot` user, by number so runAsNonRoot can verify it without /etc/passwd.
USER 65532:65532
EXPOSE 8080
# `keel healthcheck` asks the local server's /health/ready, since the image has no curl.
HEALTHCHECK --interval=10s --timeout=4s --start-period=15s --retries=3 \
  CMD ["keel", "healthcheck"]
# keel as PID 1 handles SIGTERM itself: stop accepting, drain, flush telemetry, exit 0.
ENTRYPOINT ["keel"]
CMD ["serve"]

# ---- prebuilt: the binary from the build context (make image, offline route) ----
FROM runtime AS prebuilt
COPY keel /usr/local/bin/keel

# ---- from source ----
FROM ${RUST_IMAGE} AS chef
ARG CARGO_CHEF_VERSION=0.1.78
RUN cargo install --locked cargo-chef --version "${CARGO_CHEF_VERSION}"
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
# Only the dependencies: this layer is reused until Cargo.toml or Cargo.lock change.
RUN cargo chef cook --release --locked --package keel --recipe-path recipe.json
COPY . .
# Queries are checked against the committed .sqlx/ data: no database at build time.
ENV SQLX_OFFLINE=true
RUN cargo build --release --locked --package keel --bin keel

# ---- release: the default target ----
FROM runtime AS release
COPY --from=builder /src/target/release/keel /usr/local/bin/keel
