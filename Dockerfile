# syntax=docker/dockerfile:1
#
# A small static image of kubectl-iam_roles for the in-cluster auditor (manifests/cronjob.yaml).
#
#   docker build -t kubectl-iam-roles:dev .
#   docker buildx build --platform linux/amd64,linux/arm64 -t REGISTRY/kubectl-iam-roles:v0.1.0 --push .
#
# The binary is linked statically against musl, so the final stage holds only the binary, CA certificates
# (for the AWS APIs) and a non-root user: distroless/static, about the size of the binary.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS build
# musl-gcc compiles aws-lc-sys (the TLS crypto of kube and the AWS SDK) for the musl target; aws-lc-rs needs only
# a C compiler for x86_64/aarch64 musl. cmake and perl are its fallback build path, kept so a future
# aws-lc-sys that wants them still builds.
RUN apt-get update \
    && apt-get install -y --no-install-recommends musl-tools cmake perl \
    && rm -rf /var/lib/apt/lists/*
# cc would look for aarch64-linux-musl-gcc on arm64; musl-tools ships musl-gcc on both architectures.
# aws-lc-sys probes for <linux/random.h> (not on musl-gcc's include path) and does without it.
ENV CC_x86_64_unknown_linux_musl=musl-gcc \
    CC_aarch64_unknown_linux_musl=musl-gcc
# Native build for the platform being built (x86_64 or aarch64), so buildx multi-platform builds work.
RUN echo "$(uname -m)-unknown-linux-musl" > /rust-target \
    && rustup target add "$(cat /rust-target)"
WORKDIR /src

# Dependencies first, against stub sources, so this layer is rebuilt only when Cargo.toml/Cargo.lock change.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && echo 'fn main() {}' > benches/mapping.rs \
    && echo 'fn main() {}' > benches/audit.rs \
    && cargo build --release --locked --target "$(cat /rust-target)" \
    && rm -rf src

COPY src ./src
# Newer mtimes than the stub build, so cargo rebuilds the crate itself.
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked --target "$(cat /rust-target)" --bin kubectl-iam_roles \
    && cp "target/$(cat /rust-target)/release/kubectl-iam_roles" /kubectl-iam_roles

# distroless/static: CA certificates, /etc/passwd with nonroot (65532), no shell, no package manager.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /kubectl-iam_roles /kubectl-iam_roles
USER 65532:65532
ENTRYPOINT ["/kubectl-iam_roles"]
CMD ["--help"]
